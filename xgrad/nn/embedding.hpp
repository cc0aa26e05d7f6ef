#pragma once
/// Embedding: a lookup table of learnable vectors indexed by int64 ids.
#include <cstdint>
#include <optional>
#include <string>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// Options of Embedding: num_embeddings (table rows), embedding_dim (vector size), padding_idx
/// (optional; negative counts from the end): that row starts at zero and never receives a gradient.
struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim) : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  EmbeddingOptions& num_embeddings(int64_t value) { num_embeddings_ = value; return *this; }
  EmbeddingOptions& embedding_dim(int64_t value) { embedding_dim_ = value; return *this; }
  EmbeddingOptions& padding_idx(std::optional<int64_t> value) { padding_idx_ = value; return *this; }
  int64_t num_embeddings() const { return num_embeddings_; }
  int64_t embedding_dim() const { return embedding_dim_; }
  std::optional<int64_t> padding_idx() const { return padding_idx_; }

 private:
  int64_t num_embeddings_, embedding_dim_;
  std::optional<int64_t> padding_idx_;
};

/// indices (int64, any shape) -> [*indices.shape, embedding_dim]; weight [num_embeddings, embedding_dim] ~ N(0, 1).
class EmbeddingImpl : public Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim) : EmbeddingImpl(EmbeddingOptions(num_embeddings, embedding_dim)) {}
  explicit EmbeddingImpl(const EmbeddingOptions& options);
  /// int64 indices [*] -> [*, embedding_dim].
  Tensor forward(const Tensor& indices);
  /// weight ~ N(0, 1), the padding row (if any) zeroed.
  void reset_parameters();
  std::string extra_repr() const override;

  EmbeddingOptions options;
  Tensor weight;  ///< [num_embeddings, embedding_dim]
};
XG_MODULE(Embedding);

namespace functional {
/// Options of functional embedding: padding_idx (optional; that row gets no gradient).
struct EmbeddingFuncOptions {
  EmbeddingFuncOptions& padding_idx(std::optional<int64_t> value) { padding_idx_ = value; return *this; }
  std::optional<int64_t> padding_idx() const { return padding_idx_; }

 private:
  std::optional<int64_t> padding_idx_;
};

/// int64 indices [*] and weight [num, dim] -> weight rows [*, dim].
Tensor embedding(const Tensor& indices, const Tensor& weight, const EmbeddingFuncOptions& options = {});
}  // namespace functional

}  // namespace xg::nn

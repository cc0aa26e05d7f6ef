#include "xgrad/nn/embedding.hpp"

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/nn/init.hpp"

namespace xg::nn {

namespace {

/// padding_idx in [0, num) (negative values count from the end, as PyTorch).
std::optional<int64_t> normalize_padding_idx(const char* op, std::optional<int64_t> padding_idx, int64_t num_embeddings) {
  if (!padding_idx) return std::nullopt;
  XG_CHECK(*padding_idx >= -num_embeddings && *padding_idx < num_embeddings,
           "{}: padding_idx must be within [-{}, {}) (num_embeddings = {}), got {}", op, num_embeddings, num_embeddings, num_embeddings,
           *padding_idx);
  return *padding_idx < 0 ? *padding_idx + num_embeddings : *padding_idx;
}

Tensor lookup(const char* op, const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx) {
  XG_CHECK(indices.defined() && weight.defined(), "{}: the indices or the weight are undefined", op);
  XG_CHECK(indices.dtype() == kInt64, "{}: expected int64 indices, got {} (shape {})", op, indices.dtype(), shape_string(indices.shape()));
  XG_CHECK(weight.dim() == 2, "{}: expected a 2-D weight [num_embeddings, embedding_dim], got shape {}", op, shape_string(weight.shape()));
  const int64_t num = weight.size(0), dim = weight.size(1);
  const Tensor ids_dense = xg::detail::dense(indices);
  const int64_t* ids = ids_dense.contiguous_data<int64_t>();
  const int64_t count = indices.numel();
  bool hits_padding = false;
  for (int64_t i = 0; i < count; ++i) {
    XG_CHECK(ids[i] >= 0 && ids[i] < num, "{}: index {} is out of range for num_embeddings = {} (indices of shape {})", op, ids[i], num,
             shape_string(indices.shape()));
    hits_padding = hits_padding || (padding_idx && ids[i] == *padding_idx);
  }
  Tensor rows = index_select(weight, 0, reshape(indices, {count}));
  if (hits_padding && rows.requires_grad()) {
    // The padding row keeps its value but passes no gradient: where picks the detached copy there.
    Tensor is_padding = unsqueeze(eq(reshape(indices, {count}), static_cast<double>(*padding_idx)), 1);
    rows = where(is_padding, rows.detach(), rows);
  }
  Shape out_shape = indices.shape();
  out_shape.push_back(dim);
  return reshape(rows, out_shape);
}

}  // namespace

namespace functional {
Tensor embedding(const Tensor& indices, const Tensor& weight, const EmbeddingFuncOptions& options) {
  XG_CHECK(weight.defined() && weight.dim() == 2, "embedding: expected a 2-D weight [num_embeddings, embedding_dim], got {}",
           weight.defined() ? "shape " + shape_string(weight.shape()) : std::string("an undefined tensor"));
  return lookup("embedding", indices, weight, normalize_padding_idx("embedding", options.padding_idx(), weight.size(0)));
}
}  // namespace functional

EmbeddingImpl::EmbeddingImpl(const EmbeddingOptions& options_) : options(options_) {
  XG_CHECK(options.num_embeddings() > 0 && options.embedding_dim() > 0,
           "Embedding: num_embeddings and embedding_dim must be positive, got {} and {}", options.num_embeddings(), options.embedding_dim());
  options.padding_idx(normalize_padding_idx("Embedding", options.padding_idx(), options.num_embeddings()));
  weight = register_parameter("weight", empty({options.num_embeddings(), options.embedding_dim()}));
  reset_parameters();
}

void EmbeddingImpl::reset_parameters() {
  init::normal_(weight);
  if (options.padding_idx()) {
    NoGradGuard no_grad;
    weight[*options.padding_idx()].zero_();  // a view of the row: writes into the weight
  }
}

Tensor EmbeddingImpl::forward(const Tensor& indices) { return lookup("Embedding", indices, weight, options.padding_idx()); }

std::string EmbeddingImpl::extra_repr() const {
  std::string repr = fmt::format("{}, {}", options.num_embeddings(), options.embedding_dim());
  if (options.padding_idx()) repr += fmt::format(", padding_idx={}", *options.padding_idx());
  return repr;
}

}  // namespace xg::nn

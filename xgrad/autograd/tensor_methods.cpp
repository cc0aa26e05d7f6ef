// Tensor's method spellings (x.sum(), x.view(...)) of the free ops, as torch::Tensor has them.
#include "xgrad/autograd/ops.hpp"

namespace xg {

Tensor Tensor::sum() const { return xg::sum(*this); }
Tensor Tensor::sum(IntArrayRef dims, bool keepdim) const { return xg::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return xg::mean(*this); }
Tensor Tensor::mean(IntArrayRef dims, bool keepdim) const { return xg::mean(*this, dims, keepdim); }
Tensor Tensor::max() const { return xg::max(*this); }
std::tuple<Tensor, Tensor> Tensor::max(int64_t dim, bool keepdim) const { return xg::max(*this, dim, keepdim); }
Tensor Tensor::min() const { return xg::min(*this); }
std::tuple<Tensor, Tensor> Tensor::min(int64_t dim, bool keepdim) const { return xg::min(*this, dim, keepdim); }
Tensor Tensor::argmax(std::optional<int64_t> dim, bool keepdim) const { return xg::argmax(*this, dim, keepdim); }
Tensor Tensor::argmin(std::optional<int64_t> dim, bool keepdim) const { return xg::argmin(*this, dim, keepdim); }
Tensor Tensor::var(IntArrayRef dims, bool unbiased, bool keepdim) const { return xg::var(*this, dims, unbiased, keepdim); }
Tensor Tensor::std(IntArrayRef dims, bool unbiased, bool keepdim) const { return xg::std(*this, dims, unbiased, keepdim); }
Tensor Tensor::logsumexp(IntArrayRef dims, bool keepdim) const { return xg::logsumexp(*this, dims, keepdim); }
Tensor Tensor::norm(double p, IntArrayRef dims, bool keepdim) const { return xg::norm(*this, p, dims, keepdim); }
Tensor Tensor::view(IntArrayRef shape) const { return xg::view(*this, shape); }
Tensor Tensor::reshape(IntArrayRef shape) const { return xg::reshape(*this, shape); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const { return xg::flatten(*this, start_dim, end_dim); }
Tensor Tensor::squeeze() const { return xg::squeeze(*this); }
Tensor Tensor::squeeze(int64_t dim) const { return xg::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int64_t dim) const { return xg::unsqueeze(*this, dim); }
Tensor Tensor::permute(IntArrayRef dims) const { return xg::permute(*this, dims); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return xg::transpose(*this, dim0, dim1); }
Tensor Tensor::t() const { return xg::t(*this); }
Tensor Tensor::expand(IntArrayRef shape) const { return xg::expand(*this, shape); }
Tensor Tensor::expand_as(const Tensor& other) const { return xg::expand(*this, other.shape()); }
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const { return xg::narrow(*this, dim, start, length); }
Tensor Tensor::index_select(int64_t dim, const Tensor& index) const { return xg::index_select(*this, dim, index); }
Tensor Tensor::flip(IntArrayRef dims) const { return xg::flip(*this, dims); }
Tensor Tensor::roll(IntArrayRef shifts, IntArrayRef dims) const { return xg::roll(*this, shifts, dims); }
Tensor Tensor::repeat(IntArrayRef repeats) const { return xg::repeat(*this, repeats); }
Tensor Tensor::tile(IntArrayRef dims) const { return xg::tile(*this, dims); }
Tensor Tensor::tril(int64_t diagonal) const { return xg::tril(*this, diagonal); }
Tensor Tensor::triu(int64_t diagonal) const { return xg::triu(*this, diagonal); }
Tensor Tensor::outer(const Tensor& other) const { return xg::outer(*this, other); }
Tensor Tensor::trace() const { return xg::trace(*this); }
Tensor Tensor::lerp(const Tensor& end, double weight) const { return xg::lerp(*this, end, weight); }
Tensor Tensor::lerp(const Tensor& end, const Tensor& weight) const { return xg::lerp(*this, end, weight); }
Tensor Tensor::cumsum(int64_t dim) const { return xg::cumsum(*this, dim); }
Tensor Tensor::addmm(const Tensor& mat1, const Tensor& mat2, double beta, double alpha) const {
  return xg::addmm(*this, mat1, mat2, beta, alpha);
}
Tensor Tensor::baddbmm(const Tensor& batch1, const Tensor& batch2, double beta, double alpha) const {
  return xg::baddbmm(*this, batch1, batch2, beta, alpha);
}
Tensor Tensor::diag(int64_t diagonal) const { return xg::diag(*this, diagonal); }
Tensor Tensor::diag_embed(int64_t offset, int64_t dim1, int64_t dim2) const { return xg::diag_embed(*this, offset, dim1, dim2); }
Tensor Tensor::repeat_interleave(const Tensor& repeats, std::optional<int64_t> dim) const {
  return xg::repeat_interleave(*this, repeats, dim);
}
Tensor Tensor::repeat_interleave(int64_t repeats, std::optional<int64_t> dim) const { return xg::repeat_interleave(*this, repeats, dim); }
std::tuple<Tensor, Tensor> Tensor::sort(int64_t dim, bool descending) const { return xg::sort(*this, dim, descending); }
Tensor Tensor::argsort(int64_t dim, bool descending) const { return xg::argsort(*this, dim, descending); }
std::tuple<Tensor, Tensor> Tensor::topk(int64_t k, int64_t dim, bool largest, bool sorted) const {
  return xg::topk(*this, k, dim, largest, sorted);
}
std::tuple<Tensor, Tensor> Tensor::kthvalue(int64_t k, int64_t dim, bool keepdim) const { return xg::kthvalue(*this, k, dim, keepdim); }
std::tuple<Tensor, Tensor> Tensor::median(int64_t dim, bool keepdim) const { return xg::median(*this, dim, keepdim); }
Tensor Tensor::median() const { return xg::median(*this); }
Tensor Tensor::gather(int64_t dim, const Tensor& index) const { return xg::gather(*this, dim, index); }
Tensor Tensor::masked_fill(const Tensor& mask, double value) const { return xg::masked_fill(*this, mask, value); }
std::vector<Tensor> Tensor::split(int64_t split_size, int64_t dim) const { return xg::split(*this, split_size, dim); }
std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t dim) const { return xg::chunk(*this, chunks, dim); }
Tensor Tensor::matmul(const Tensor& other) const { return xg::matmul(*this, other); }
Tensor Tensor::mm(const Tensor& other) const { return xg::mm(*this, other); }
Tensor Tensor::bmm(const Tensor& other) const { return xg::bmm(*this, other); }
Tensor Tensor::dot(const Tensor& other) const { return xg::dot(*this, other); }
Tensor Tensor::exp() const { return xg::exp(*this); }
Tensor Tensor::log() const { return xg::log(*this); }
Tensor Tensor::sqrt() const { return xg::sqrt(*this); }
Tensor Tensor::abs() const { return xg::abs(*this); }
Tensor Tensor::neg() const { return xg::neg(*this); }
Tensor Tensor::sin() const { return xg::sin(*this); }
Tensor Tensor::cos() const { return xg::cos(*this); }
Tensor Tensor::tanh() const { return xg::tanh(*this); }
Tensor Tensor::sigmoid() const { return xg::sigmoid(*this); }
Tensor Tensor::relu() const { return xg::relu(*this); }
Tensor Tensor::pow(double exponent) const { return xg::pow(*this, exponent); }
Tensor Tensor::pow(const Tensor& exponent) const { return xg::pow(*this, exponent); }
Tensor Tensor::clamp(std::optional<double> min, std::optional<double> max) const { return xg::clamp(*this, min, max); }
Tensor Tensor::softmax(int64_t dim) const { return xg::softmax(*this, dim); }
Tensor Tensor::log_softmax(int64_t dim) const { return xg::log_softmax(*this, dim); }
Tensor Tensor::eq(const Tensor& other) const { return xg::eq(*this, other); }
Tensor Tensor::ne(const Tensor& other) const { return xg::ne(*this, other); }
Tensor Tensor::lt(const Tensor& other) const { return xg::lt(*this, other); }
Tensor Tensor::le(const Tensor& other) const { return xg::le(*this, other); }
Tensor Tensor::gt(const Tensor& other) const { return xg::gt(*this, other); }
Tensor Tensor::ge(const Tensor& other) const { return xg::ge(*this, other); }

}  // namespace xg

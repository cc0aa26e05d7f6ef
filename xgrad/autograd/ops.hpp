#pragma once
/// Differentiable tensor ops. Each records one node on the tape when grad mode is on and an input
/// requires grad; every backward formula is written with these same ops, so gradients of gradients
/// (create_graph) come for free. Binary ops broadcast as NumPy does; mixing dtypes is an error.
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "xgrad/autograd/array_ref.hpp"
#include "xgrad/autograd/tensor.hpp"

namespace xg {

// ---- elementwise binary (NumPy broadcasting) -------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);  ///< a + alpha * b
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);  ///< a - alpha * b
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
/// b - a and b / a for a scalar b.
Tensor rsub(const Tensor& a, double b);
Tensor rdiv(const Tensor& a, double b);
Tensor pow(const Tensor& base, double exponent);
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor pow(double base, const Tensor& exponent);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
/// Elementwise choice: condition (any dtype, nonzero = true) ? a : b, all three broadcast.
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// Comparisons give 0/1 masks in the inputs' dtype (xgrad has no bool dtype); not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

// ---- elementwise unary ------------------------------------------------------------------------
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
/// The error function (the Gaussian CDF is 0.5 * (1 + erf(x / sqrt(2)))).
Tensor erf(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
/// x if x > 0 else negative_slope * x.
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
/// x if x > 0 else alpha * (exp(x) - 1).
Tensor elu(const Tensor& x, double alpha = 1.0);
/// x * Phi(x); approximate = "none" (erf) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
/// log(1 + exp(beta * x)) / beta, linear above threshold (as torch.nn.functional.softplus).
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
/// Clamps into [min, max]; either bound may be absent. Gradient 1 where min <= x <= max, else 0
/// (PyTorch's convention).
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max = std::nullopt);
/// Differentiable dtype conversion between float32 and float64 (int64 targets are not differentiable).
Tensor to_dtype(const Tensor& x, Dtype dtype);

// ---- reductions ---------------------------------------------------------------------------------
/// Empty dims = all dims. Negative dims count from the end.
Tensor sum(const Tensor& x, IntArrayRef dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, IntArrayRef dims = {}, bool keepdim = false);
/// Maximum of all elements (gradient split evenly between ties).
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
/// (values, int64 indices) along dim; the gradient goes to the selected index.
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
/// Index of the first maximum (of the flattened tensor when dim is absent).
Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
/// Variance with Bessel's correction when unbiased (divides by N-1).
Tensor var(const Tensor& x, IntArrayRef dims = {}, bool unbiased = true, bool keepdim = false);
Tensor std(const Tensor& x, IntArrayRef dims = {}, bool unbiased = true, bool keepdim = false);
/// log(sum(exp(x))) along dims, stable for large |x|.
Tensor logsumexp(const Tensor& x, IntArrayRef dims, bool keepdim = false);
/// p-norm (p = 1 or 2, or any p > 0) over dims (empty = all).
Tensor norm(const Tensor& x, double p = 2, IntArrayRef dims = {}, bool keepdim = false);
/// Sums a broadcast gradient back to `shape` (the inverse of expand).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra (BLAS) ----------------------------------------------------------------------
/// PyTorch's matmul: 1-D x 1-D = dot, 2-D x 2-D = mm, 1-D operands get a dimension added and removed,
/// batch dimensions broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
/// [n, k] x [k, m] -> [n, m].
Tensor mm(const Tensor& a, const Tensor& b);
/// [B, n, k] x [B, k, m] -> [B, n, m].
Tensor bmm(const Tensor& a, const Tensor& b);
/// 1-D inner product -> 0-D.
Tensor dot(const Tensor& a, const Tensor& b);
/// The transpose of a matrix (<= 2-D, as torch.t).
Tensor t(const Tensor& x);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
/// x [.., in] * weight [out, in]^T + bias [out] -> [.., out], one GEMM with the bias folded in.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
/// op(a) * op(b) with op = transpose when the flag is set; 2-D or batched 3-D. The BLAS primitive
/// behind mm, bmm, matmul and linear, exposed for custom kernels that want transposes without copies.
Tensor gemm(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);

// ---- shape and indexing ---------------------------------------------------------------------------
/// A copy with its own data (differentiable).
Tensor clone(const Tensor& x);
/// The same elements in a new shape; one dimension may be -1 (inferred). view() shares x's storage and
/// is an error when x's strides do not allow it; reshape() is a view when they do, otherwise a copy.
Tensor reshape(const Tensor& x, IntArrayRef shape);
Tensor view(const Tensor& x, IntArrayRef shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
/// Removes every size-1 dimension, or only `dim` if it has size 1.
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor permute(const Tensor& x, IntArrayRef dims);
/// Broadcasts to `shape` (-1 keeps a dimension); the gradient is summed back.
Tensor expand(const Tensor& x, IntArrayRef shape);
Tensor broadcast_to(const Tensor& x, IntArrayRef shape);
/// Elements [start, start + length) along dim.
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
/// Elements start, start+step, ... below end along dim (end clamped to the size; negative start/end wrap).
Tensor slice(const Tensor& x, int64_t dim, std::optional<int64_t> start = std::nullopt,
             std::optional<int64_t> end = std::nullopt, int64_t step = 1);
/// The sub-tensor at `index` along dim, without that dim (a view); Tensor::operator[] is select(0, i).
Tensor select(const Tensor& x, int64_t dim, int64_t index);
/// Moves dims `source` to positions `destination`, the others keeping their order (a view).
Tensor movedim(const Tensor& x, int64_t source, int64_t destination);
Tensor movedim(const Tensor& x, const std::vector<int64_t>& source, const std::vector<int64_t>& destination);
/// Splits dim into `sizes` (one may be -1), a view.
Tensor unflatten(const Tensor& x, int64_t dim, const Shape& sizes);
/// The slices along dim, each without that dim (views).
TensorList unbind(const Tensor& x, int64_t dim = 0);
/// The diagonal of the (dim1, dim2) planes, offset above (> 0) or below (< 0) the main one, as the last dim (a view).
Tensor diagonal(const Tensor& x, int64_t offset = 0, int64_t dim1 = 0, int64_t dim2 = 1);
/// A view of x's storage with the given sizes, element strides and offset (default: x's offset).
Tensor as_strided(const Tensor& x, const Shape& sizes, const Shape& strides, std::optional<int64_t> storage_offset = std::nullopt);
/// Concatenation along an existing dim; stack adds a new one.
Tensor cat(const TensorList& tensors, int64_t dim = 0);
Tensor stack(const TensorList& tensors, int64_t dim = 0);
/// Pieces of split_size along dim (the last may be smaller).
TensorList split(const Tensor& x, int64_t split_size, int64_t dim = 0);
/// Pieces of the given sizes along dim.
TensorList split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
/// `chunks` pieces of ceil(size / chunks) along dim.
TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
/// Rows (along dim) picked by a 1-D int64 index.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
/// A copy of x with source's slices added at index along dim (out[index[i]] += source[i] for dim 0).
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source);
/// out[i][j] = x[index[i][j]][j] for dim 0 (and so on): index is int64 with x's rank.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// A copy of x with src added at index along dim (out[index[i][j]][j] += src[i][j] for dim 0).
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
/// x with `value` where mask (broadcast to x) is nonzero.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
/// int64 class indices [...] -> int64 one-hot [..., num_classes] (num_classes = max + 1 when -1).
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);
/// Constant padding; `padding` = {left, right} of the last dim, then {left, right} of the one before,
/// ... (torch.nn.functional.pad order). Negative amounts crop.
Tensor pad(const Tensor& x, const std::vector<int64_t>& padding, double value = 0.0);

// ---- rearranging and combining (compositions of the ops above; ops_compose.cpp) -------------------
/// The elements in reverse order along each of dims (a copy, as PyTorch).
Tensor flip(const Tensor& x, IntArrayRef dims);
/// Rolls elements along dims by shifts (element i moves to (i + shift) mod size); without dims the
/// flattened tensor is rolled by one shift and reshaped back.
Tensor roll(const Tensor& x, IntArrayRef shifts, IntArrayRef dims = {});
/// Tiles x repeats[d] times along each dim; repeats may have more entries than x has dims (new leading dims).
Tensor repeat(const Tensor& x, IntArrayRef repeats);
/// repeat() where fewer reps than dims repeat the leading dims once (torch.tile / NumPy's tile).
Tensor tile(const Tensor& x, IntArrayRef dims);
/// The lower (tril) or upper (triu) triangle of the last two dims: elements with j - i <= diagonal
/// (tril) or >= diagonal (triu) are kept, the rest set to 0.
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
/// a [n] (x) b [m] -> [n, m].
Tensor outer(const Tensor& a, const Tensor& b);
/// The sum of a matrix's main diagonal.
Tensor trace(const Tensor& x);
/// start + weight * (end - start), with PyTorch's formula (end - (end - start) * (1 - weight) when
/// |weight| >= 0.5, so weight 1 gives end exactly).
Tensor lerp(const Tensor& start, const Tensor& end, double weight);
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight);
/// beta * input + alpha * (mat1 @ mat2); input broadcasts to [n, m]; beta = 0 ignores input (NaN too).
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, double beta = 1.0, double alpha = 1.0);
/// beta * input + alpha * bmm(batch1, batch2).
Tensor baddbmm(const Tensor& input, const Tensor& batch1, const Tensor& batch2, double beta = 1.0, double alpha = 1.0);
/// A 1-D x on the offset diagonal of a new square matrix; a matrix's offset diagonal as a 1-D copy.
Tensor diag(const Tensor& x, int64_t diagonal = 0);
/// x's last dim placed on the offset diagonal of the planes (dim1, dim2) of a new tensor of rank dim() + 1.
Tensor diag_embed(const Tensor& x, int64_t offset = 0, int64_t dim1 = -2, int64_t dim2 = -1);
/// Coordinate grids (expanded views) from 0-D or 1-D tensors; indexing "ij" (matrix) or "xy" (Cartesian).
TensorList meshgrid(const TensorList& tensors, const std::string& indexing = "ij");
/// Each element (or slice along dim) repeated repeats[i] times in place; without dim, of the flattened x.
Tensor repeat_interleave(const Tensor& x, const Tensor& repeats, std::optional<int64_t> dim = std::nullopt);
Tensor repeat_interleave(const Tensor& x, int64_t repeats, std::optional<int64_t> dim = std::nullopt);
/// i repeated repeats[i] times, for i = 0 .. n - 1.
Tensor repeat_interleave(const Tensor& repeats);
/// Pairwise p-norm distances between the rows of x1 [.., P, M] and x2 [.., R, M] -> [.., P, R].
Tensor cdist(const Tensor& x1, const Tensor& x2, double p = 2.0);
/// Running sum along dim (float32 accumulated in double, as PyTorch on the CPU).
Tensor cumsum(const Tensor& x, int64_t dim);

// ---- ordering (ops_sort.cpp) --------------------------------------------------------------------
// Indices are int64; values are gathered at them, so gradients go to the returned indices (PyTorch's
// convention at ties). NaN orders above every number; equal values keep their order (stable).
/// (values, indices) sorted along dim.
std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// libtorch's overload with `stable` first (xgrad's sort is always stable).
std::tuple<Tensor, Tensor> sort(const Tensor& x, std::optional<bool> stable, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// The k largest (or smallest) along dim, in order; 0 <= k <= size.
std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);
/// The k-th smallest (k from 1) along dim.
std::tuple<Tensor, Tensor> kthvalue(const Tensor& x, int64_t k, int64_t dim = -1, bool keepdim = false);
/// The lower median along dim (NaN, at its first NaN, for a slice with a NaN).
std::tuple<Tensor, Tensor> median(const Tensor& x, int64_t dim, bool keepdim = false);
/// The lower median of all elements; its gradient is split evenly between the elements equal to it.
Tensor median(const Tensor& x);

// ---- softmax ----------------------------------------------------------------------------------
/// Numerically stable along dim (finite at logits of +-1000).
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- operators ----------------------------------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
Tensor& operator+=(Tensor& a, const Tensor& b);
Tensor& operator-=(Tensor& a, const Tensor& b);
Tensor& operator*=(Tensor& a, const Tensor& b);
Tensor& operator/=(Tensor& a, const Tensor& b);
Tensor& operator+=(Tensor& a, double b);
Tensor& operator-=(Tensor& a, double b);
Tensor& operator*=(Tensor& a, double b);
Tensor& operator/=(Tensor& a, double b);

}  // namespace xg

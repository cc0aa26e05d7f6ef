#include "xgrad/autograd/function.hpp"

namespace xg::autograd {

namespace {
template <class V, class Variant>
const V& get_saved(const Variant& value, const char* what) {
  const V* held = std::get_if<V>(&value);
  XG_CHECK(held != nullptr, "saved_data: the value does not hold {}", what);
  return *held;
}
}  // namespace

double SavedValue::toDouble() const {
  if (auto i = std::get_if<int64_t>(&value_)) return static_cast<double>(*i);
  return get_saved<double>(value_, "a double");
}
int64_t SavedValue::toInt() const { return get_saved<int64_t>(value_, "an integer"); }
bool SavedValue::toBool() const { return get_saved<bool>(value_, "a bool"); }
const std::vector<int64_t>& SavedValue::toIntVector() const { return get_saved<std::vector<int64_t>>(value_, "an integer list"); }
const std::string& SavedValue::toStringRef() const { return get_saved<std::string>(value_, "a string"); }
const Tensor& SavedValue::toTensor() const { return get_saved<Tensor>(value_, "a tensor"); }

void AutogradContext::save_for_backward(const TensorList& tensors) { to_save_ = tensors; }

TensorList AutogradContext::get_saved_variables() const {
  std::shared_ptr<Node> node = node_.lock();
  TensorList result;
  for (const SavedTensor& s : saved_) result.push_back(s.unpack(node, name_.empty() ? "CustomFunctionBackward" : name_.c_str()));
  return result;
}

void AutogradContext::mark_non_differentiable(const TensorList& outputs) {
  for (const Tensor& t : outputs) non_differentiable_.push_back(t.impl().get());
}

bool AutogradContext::needs_input_grad(size_t i) const { return i < needs_input_grad_.size() && needs_input_grad_[i]; }

}  // namespace xg::autograd

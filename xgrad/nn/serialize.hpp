#pragma once
/// Checkpoints in the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON naming each tensor's dtype, shape and byte range,
/// then the raw little-endian row-major data. Files written here load in PyTorch with
/// `safetensors.torch.load_file`, and files PyTorch exports with `save_file` load here (F32, F64, I64).
///
/// Writes are atomic: the data goes to a temporary file in the target's directory, is fsynced, then
/// renamed over the target, so a crash or a failed save never leaves a damaged checkpoint behind.
/// Reads validate the whole header against the file before allocating anything; every defect is an
/// xg::Error naming the file (and the tensor, where one is at fault).
#include <map>
#include <memory>
#include <string>
#include <type_traits>

#include "xgrad/autograd/tensor.hpp"
#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// Writes tensors (any shape, float32/float64/int64) to path. Header entries keep the dict's order;
/// the data of 8-byte dtypes comes first so that every tensor starts at a multiple of its item size.
/// metadata becomes the header's "__metadata__" string map (omitted when empty).
void save_safetensors(const OrderedDict<Tensor>& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads every tensor of a safetensors file, in header order; fills *metadata with "__metadata__" if given.
OrderedDict<Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

/// Same format for generic checkpoint pieces (optimizer state, RNG state): name -> tensor, sorted by name.
void save_tensors(const std::map<std::string, Tensor>& tensors, const std::string& path,
                  const std::map<std::string, std::string>& metadata = {});

/// Reads a file written by save_tensors (or any safetensors file) into name -> tensor.
std::map<std::string, Tensor> load_tensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

/// Saves module.state_dict() (parameters and buffers by dotted name), as torch::save(model, path).
void save(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata = {});

/// Loads a safetensors file into module via load_state_dict: strict makes missing and unexpected keys
/// errors; floating values are converted to each parameter's dtype (an F64 file loads into a float32
/// model), int64 buffers stay int64. A failed load leaves the module unchanged.
void load(Module& module, const std::string& path, bool strict = true);

/// save(model, path) for a module held by shared_ptr (std::make_shared<Net>()).
template <class M, class = std::enable_if_t<std::is_base_of_v<Module, M>>>
void save(const std::shared_ptr<M>& module, const std::string& path, const std::map<std::string, std::string>& metadata = {}) {
  XG_CHECK(module != nullptr, "save: '{}': the module pointer is null", path);
  save(static_cast<const Module&>(*module), path, metadata);
}

/// load(model, path) for a module held by shared_ptr.
template <class M, class = std::enable_if_t<std::is_base_of_v<Module, M>>>
void load(const std::shared_ptr<M>& module, const std::string& path, bool strict = true) {
  XG_CHECK(module != nullptr, "load: '{}': the module pointer is null", path);
  load(static_cast<Module&>(*module), path, strict);
}

/// save(model, path) for a module holder (nn::Linear, nn::Sequential, XG_MODULE types).
template <class Impl>
void save(const ModuleHolder<Impl>& module, const std::string& path, const std::map<std::string, std::string>& metadata = {}) {
  save(module.ptr(), path, metadata);
}

/// load(model, path) for a module holder.
template <class Impl>
void load(const ModuleHolder<Impl>& module, const std::string& path, bool strict = true) {
  load(module.ptr(), path, strict);
}

}  // namespace xg::nn

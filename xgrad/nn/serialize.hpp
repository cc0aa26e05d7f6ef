#pragma once
/// Checkpoints in the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON naming each tensor's dtype, shape and byte range,
/// then the raw little-endian row-major data. Files written here load in PyTorch with
/// `safetensors.torch.load_file`, and files PyTorch exports with `save_file` load here (F32, F64, I64).
///
/// Writes are atomic (AtomicFile below): the data goes to a temporary file in the target's directory, is
/// fsynced, then renamed over the target, so a crash or a failed save never leaves a damaged checkpoint
/// behind. A symlink is followed and the file it names is replaced (the link stays a link); a target that
/// is not a regular file (a directory, a device such as /dev/full, a fifo, a socket) is refused.
///
/// Every file written here carries "crc32" in its "__metadata__": a CRC-32 of every tensor (name, dtype,
/// shape, little-endian bytes, in name order) and every other metadata entry (key, value), each string
/// followed by a NUL byte, as 8 hex digits. Reads verify it when present, so a flipped bit is an error
/// instead of a silently wrong weight; files without it (written by PyTorch's safetensors) still load.
/// Reads validate the whole header against the file before allocating anything; every defect is an
/// xg::Error naming the file (and the tensor, where one is at fault).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>

#include "xgrad/autograd/tensor.hpp"
#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// The "__metadata__" key of the checksum every writer here stores (any value the caller passes is replaced).
inline constexpr const char* kChecksumMetadataKey = "crc32";

/// A file replaced atomically: written to `.<name>.xgrad.tmp.<host>.<pid>.<n>` in the target's directory,
/// fsynced, and renamed over the target by commit(); destroyed without commit(), it removes the temporary
/// and leaves the target as it was. Symlinks (chains, relative targets) are followed to the file they name,
/// which keeps its permission bits; a target that is not a regular file is refused with an xg::Error.
/// Temporaries left behind by killed processes (same name, same host, a pid that no longer runs) are
/// removed by the next write of the same target. `op` prefixes error messages ("save: '<path>': ...").
class AtomicFile {
 public:
  AtomicFile(std::string op, std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();
  /// Appends bytes to the temporary file.
  void write(const char* data, uint64_t bytes);
  /// Flushes the data to disk and renames the temporary over the target.
  void commit();
  /// The file that commit() replaces (the path with its symlinks resolved).
  const std::string& target() const { return target_; }

 private:
  std::string op_, path_, target_, temporary_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Writes tensors (any shape, float32/float64/int64) to path. Header entries keep the dict's order;
/// the data of 8-byte dtypes comes first so that every tensor starts at a multiple of its item size.
/// metadata becomes the header's "__metadata__" string map, with the "crc32" checksum added.
void save_safetensors(const OrderedDict<Tensor>& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads every tensor of a safetensors file, in header order, verifying the "crc32" checksum if the file
/// has one; fills *metadata with "__metadata__" (the checksum included) if given.
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

#include "xgrad/nn/serialize.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace xg::nn {

namespace {

// ordered_json keeps the header's key order, so a loaded dict comes back in the order it was saved.
using Json = nlohmann::ordered_json;

// The reference reader (huggingface/safetensors) refuses larger headers; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";
constexpr size_t kWriteBufferBytes = size_t{1} << 20;

constexpr bool kHostIsLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

const char* dtype_code(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return "F32";
    case Dtype::Float64: return "F64";
    case Dtype::Int64: return "I64";
  }
  return "?";
}

std::optional<Dtype> dtype_from_code(const std::string& code) {
  if (code == "F32") return kFloat32;
  if (code == "F64") return kFloat64;
  if (code == "I64") return kInt64;
  return std::nullopt;
}

uint64_t item_size(Dtype dtype) { return dtype == kFloat32 ? 4 : 8; }

std::string errno_text(int error) { return std::error_code(error, std::generic_category()).message(); }

/// Reverses the bytes of each item_size-byte element (only needed on a big-endian host).
void swap_bytes(char* data, uint64_t bytes, uint64_t item) {
  for (uint64_t at = 0; at + item <= bytes; at += item) std::reverse(data + at, data + at + item);
}

const char* raw_bytes(const Tensor& tensor) {
  switch (tensor.dtype()) {
    case Dtype::Float32: return reinterpret_cast<const char*>(tensor.data_ptr<float>());
    case Dtype::Float64: return reinterpret_cast<const char*>(tensor.data_ptr<double>());
    case Dtype::Int64: return reinterpret_cast<const char*>(tensor.data_ptr<int64_t>());
  }
  return nullptr;
}

char* raw_bytes_mutable(const Tensor& tensor) { return const_cast<char*>(raw_bytes(tensor)); }

/// Throws unless s is valid UTF-8 (the header is UTF-8 JSON; the JSON writer would reject it later).
void check_utf8(const std::string& op, const std::string& path, const char* what, const std::string& s) {
  try {
    (void)Json(s).dump();
  } catch (const Json::exception&) {
    XG_ERROR("{}: '{}': the {} '{}' is not valid UTF-8", op, path, what, s);
  }
}

// ---- writing --------------------------------------------------------------------------------------

/// A temporary file next to the target that removes itself unless committed (renamed over the target).
class TempFile {
 public:
  TempFile(const std::string& op, const std::string& target) : op_(op), target_(target) {
    std::random_device entropy;
    std::mt19937_64 generator((uint64_t{entropy()} << 32) ^ entropy());
    for (int attempt = 0; attempt < 16; ++attempt) {
      path_ = fmt::format("{}.tmp.{}.{:016x}", target, static_cast<long>(::getpid()), generator());
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) break;
      if (errno != EEXIST) XG_ERROR("{}: '{}': cannot create the temporary file '{}': {}", op, target, path_, errno_text(errno));
    }
    XG_CHECK(fd_ >= 0, "{}: '{}': cannot create a temporary file next to it (every random name was taken)", op, target);
    // Replacing a file keeps its permission bits (a checkpoint made private stays private).
    struct stat existing {};
    if (::stat(target.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)) (void)::fchmod(fd_, existing.st_mode & 07777);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }

  void write(const char* data, uint64_t bytes) {
    while (bytes > 0) {
      ssize_t written = ::write(fd_, data, std::min<uint64_t>(bytes, uint64_t{1} << 30));
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) fail("cannot write the temporary file '{}': {}", path_, errno_text(written < 0 ? errno : EIO));
      data += written;
      bytes -= static_cast<uint64_t>(written);
    }
  }

  /// Flushes to disk, then atomically replaces the target; the directory entry is flushed too.
  void commit() {
    if (::fsync(fd_) != 0) fail("cannot flush the temporary file '{}' to disk: {}", path_, errno_text(errno));
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("cannot close the temporary file '{}': {}", path_, errno_text(errno));
    if (::rename(path_.c_str(), target_.c_str()) != 0) fail("cannot rename '{}' over it: {}", path_, errno_text(errno));
    committed_ = true;
    // Best effort: some file systems cannot fsync a directory, and the data itself is already safe.
    size_t slash = target_.rfind('/');
    std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : target_.substr(0, slash));
    int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      (void)::fsync(dir_fd);
      ::close(dir_fd);
    }
  }

 private:
  template <class... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    XG_ERROR("{}: '{}': {}", op_, target_, fmt::format(format, std::forward<Args>(args)...));
  }

  std::string op_, target_, path_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Collects small writes into one buffer so a model of many tiny tensors costs few system calls.
class BufferedWriter {
 public:
  explicit BufferedWriter(TempFile& file) : file_(file) { buffer_.reserve(kWriteBufferBytes); }
  void write(const char* data, uint64_t bytes, uint64_t item = 1) {
    if (kHostIsLittleEndian && bytes >= kWriteBufferBytes) {
      flush();
      file_.write(data, bytes);
      return;
    }
    while (bytes > 0) {
      // Whole items per chunk so a big-endian host can swap each one in the buffer.
      uint64_t room = (kWriteBufferBytes - buffer_.size()) / item * item;
      if (room == 0) {
        flush();
        continue;
      }
      uint64_t chunk = std::min(bytes, room);
      size_t start = buffer_.size();
      buffer_.insert(buffer_.end(), data, data + chunk);
      if (!kHostIsLittleEndian && item > 1) swap_bytes(buffer_.data() + start, chunk, item);
      data += chunk;
      bytes -= chunk;
    }
  }
  void flush() {
    if (!buffer_.empty()) file_.write(buffer_.data(), buffer_.size());
    buffer_.clear();
  }

 private:
  TempFile& file_;
  std::vector<char> buffer_;
};

std::string little_endian_u64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

void write_safetensors(const std::string& op, const std::vector<std::pair<std::string, Tensor>>& tensors, const std::string& path,
                       const std::map<std::string, std::string>& metadata) {
  XG_CHECK(!path.empty(), "{}: the path is empty", op);
  for (const auto& [name, tensor] : tensors) {
    XG_CHECK(tensor.defined(), "{}: '{}': tensor '{}' is undefined and cannot be written", op, path, name);
    XG_CHECK(name != kMetadataKey, "{}: '{}': '{}' is reserved for the metadata and cannot name a tensor", op, path, name);
    check_utf8(op, path, "tensor name", name);
  }
  for (const auto& [key, value] : metadata) {
    check_utf8(op, path, "metadata key", key);
    check_utf8(op, path, "metadata value", value);
  }

  // Data layout: 8-byte dtypes first (each group in the caller's order), so every tensor's data
  // starts at a multiple of its item size, as the reference writer arranges it.
  std::vector<size_t> layout(tensors.size());
  for (size_t i = 0; i < layout.size(); ++i) layout[i] = i;
  std::stable_partition(layout.begin(), layout.end(), [&](size_t i) { return item_size(tensors[i].second.dtype()) == 8; });
  std::vector<std::pair<uint64_t, uint64_t>> offsets(tensors.size());
  uint64_t cursor = 0;
  for (size_t i : layout) {
    uint64_t bytes = static_cast<uint64_t>(tensors[i].second.numel()) * item_size(tensors[i].second.dtype());
    offsets[i] = {cursor, cursor + bytes};
    cursor += bytes;
  }

  // Header: "__metadata__" first, then tensors in the caller's order; fields in the reference
  // writer's order (dtype, shape, data_offsets); compact JSON padded with spaces to 8 bytes.
  Json header = Json::object();
  if (!metadata.empty()) {
    Json entries = Json::object();
    for (const auto& [key, value] : metadata) entries[key] = value;
    header[kMetadataKey] = std::move(entries);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& tensor = tensors[i].second;
    Json entry = Json::object();
    entry["dtype"] = dtype_code(tensor.dtype());
    entry["shape"] = Json::array();
    for (int64_t size : tensor.shape()) entry["shape"].push_back(size);
    entry["data_offsets"] = Json::array({offsets[i].first, offsets[i].second});
    header[tensors[i].first] = std::move(entry);
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  XG_CHECK(header_text.size() <= kMaxHeaderBytes, "{}: '{}': the header would be {} bytes, above the format's limit of {}", op, path,
           header_text.size(), kMaxHeaderBytes);

  TempFile file(op, path);
  BufferedWriter writer(file);
  std::string length = little_endian_u64(header_text.size());
  writer.write(length.data(), length.size());
  writer.write(header_text.data(), header_text.size());
  for (size_t i : layout) {
    const Tensor& tensor = tensors[i].second;
    uint64_t bytes = offsets[i].second - offsets[i].first;
    if (bytes > 0) writer.write(raw_bytes(tensor), bytes, item_size(tensor.dtype()));
  }
  writer.flush();
  file.commit();
}

// ---- reading --------------------------------------------------------------------------------------

struct Entry {
  std::string name;
  Dtype dtype;
  Shape shape;
  uint64_t begin, end;
};

class Reader {
 public:
  Reader(std::string op, std::string path) : op_(std::move(op)), path_(std::move(path)) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() {
    if (fd_ >= 0) ::close(fd_);
  }

  OrderedDict<Tensor> read(std::map<std::string, std::string>* metadata_out) {
    open_file();
    if (file_size_ < 8) fail("the file is {} bytes long, too short to hold the 8-byte header length", file_size_);
    char length_bytes[8];
    read_at(0, length_bytes, 8);
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(length_bytes[i]);
    if (header_length > kMaxHeaderBytes)
      fail("the header length {} is absurdly large (the limit is {} bytes); is this a safetensors file?", header_length, kMaxHeaderBytes);
    if (8 + header_length > file_size_)
      fail("the header length {} runs past the end of the file ({} bytes)", header_length, file_size_);
    std::string header_text(header_length, '\0');
    read_at(8, header_text.data(), header_length);
    data_start_ = 8 + header_length;
    data_size_ = file_size_ - data_start_;

    Json header = parse_header(header_text);
    std::map<std::string, std::string> metadata;
    std::vector<Entry> entries;
    for (const auto& [key, value] : header.items()) {
      if (key == kMetadataKey) metadata = parse_metadata(value);
      else entries.push_back(parse_entry(key, value));
    }
    check_coverage(entries);

    // Everything is validated: allocation is now bounded by the file size, and reading cannot fail
    // on a well-formed file. Read in file order (sequential I/O), return in header order.
    std::vector<Tensor> tensors(entries.size());
    std::vector<size_t> by_offset(entries.size());
    for (size_t i = 0; i < by_offset.size(); ++i) by_offset[i] = i;
    std::sort(by_offset.begin(), by_offset.end(), [&](size_t a, size_t b) { return entries[a].begin < entries[b].begin; });
    for (size_t i : by_offset) {
      const Entry& entry = entries[i];
      Tensor tensor = xg::empty(entry.shape, TensorOptions(entry.dtype));
      uint64_t bytes = entry.end - entry.begin;
      if (bytes > 0) {
        char* destination = raw_bytes_mutable(tensor);
        read_at(data_start_ + entry.begin, destination, bytes);
        if (!kHostIsLittleEndian) swap_bytes(destination, bytes, item_size(entry.dtype));
      }
      tensors[i] = std::move(tensor);
    }
    OrderedDict<Tensor> result;
    for (size_t i = 0; i < entries.size(); ++i) result.insert(entries[i].name, std::move(tensors[i]));
    if (metadata_out != nullptr) *metadata_out = std::move(metadata);
    return result;
  }

 private:
  template <class... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
    XG_ERROR("{}: '{}': {}", op_, path_, fmt::format(format, std::forward<Args>(args)...));
  }

  void open_file() {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail("cannot open the file: {}", errno_text(errno));
    struct stat info {};
    if (::fstat(fd_, &info) != 0) fail("cannot stat the file: {}", errno_text(errno));
    if (!S_ISREG(info.st_mode)) fail("not a regular file");
    file_size_ = static_cast<uint64_t>(info.st_size);
  }

  void read_at(uint64_t offset, char* data, uint64_t bytes) {
    while (bytes > 0) {
      ssize_t got = ::pread(fd_, data, std::min<uint64_t>(bytes, uint64_t{1} << 30), static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail("cannot read the file: {}", errno_text(errno));
      if (got == 0) fail("unexpected end of file at byte {} (was the file changed while being read?)", offset);
      data += got;
      offset += static_cast<uint64_t>(got);
      bytes -= static_cast<uint64_t>(got);
    }
  }

  Json parse_header(const std::string& text) const {
    // JSON parsers keep the last of duplicate keys silently; a checkpoint with two values for one
    // name is corrupt, so track the keys of every open object while parsing.
    std::vector<std::set<std::string>> open_objects;
    std::optional<std::string> duplicate;
    auto track_keys = [&](int, Json::parse_event_t event, Json& parsed) {
      if (event == Json::parse_event_t::object_start) {
        open_objects.emplace_back();
      } else if (event == Json::parse_event_t::object_end) {
        if (!open_objects.empty()) open_objects.pop_back();
      } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second && !duplicate) duplicate = key;
      }
      return true;
    };
    Json header;
    try {
      header = Json::parse(text.begin(), text.end(), track_keys);
    } catch (const Json::exception& error) {
      // parse_error for bad syntax, out_of_range for numbers such as 1e400 (found by fuzz_safetensors).
      // The parser's message quotes the offending token, which may be as long as the header.
      std::string reason = error.what();
      if (reason.size() > 300) reason = reason.substr(0, 300) + "...";
      fail("the header is not valid JSON: {}", reason);
    }
    if (duplicate) fail("duplicate key '{}' in the header", *duplicate);
    if (!header.is_object()) fail("the header is not a JSON object (it is {})", header.type_name());
    return header;
  }

  /// A header value as quoted in an error: dump() recurses once per nesting level (a 100000-deep array
  /// would overflow the stack) and would quote a value of any size whole.
  static std::string excerpt(const Json& value) {
    if (value.is_structured())
      for (const Json& element : value)
        if (element.is_structured()) return fmt::format("a nested {}", value.type_name());
    std::string text = value.dump(-1, ' ', true);  // ASCII only, so cutting it cannot split a character
    if (text.size() <= 100) return text;
    return fmt::format("{}... ({} elements)", text.substr(0, 80), value.size());
  }

  std::map<std::string, std::string> parse_metadata(const Json& value) const {
    std::map<std::string, std::string> metadata;
    if (value.is_null()) return metadata;
    if (!value.is_object()) fail("\"{}\" must be an object of strings, got {}", kMetadataKey, value.type_name());
    for (const auto& [key, text] : value.items()) {
      if (!text.is_string()) fail("\"{}\" must be an object of strings, but \"{}\" is {}", kMetadataKey, key, text.type_name());
      metadata[key] = text.get<std::string>();
    }
    return metadata;
  }

  /// A non-negative integer that fits in int64 (JSON numbers like 2.0 or -1 are rejected).
  std::optional<uint64_t> as_count(const Json& value) const {
    if (value.is_number_unsigned()) {
      uint64_t n = value.get<uint64_t>();
      if (n > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return n;
    }
    if (value.is_number_integer() && value.get<int64_t>() >= 0) return static_cast<uint64_t>(value.get<int64_t>());
    return std::nullopt;
  }

  Entry parse_entry(const std::string& name, const Json& value) const {
    if (!value.is_object()) fail("tensor '{}': the entry must be an object, got {}", name, value.type_name());
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!value.contains(field)) fail("tensor '{}': missing \"{}\"", name, field);
    Entry entry;
    entry.name = name;

    const Json& dtype = value.at("dtype");
    if (!dtype.is_string()) fail("tensor '{}': \"dtype\" must be a string, got {}", name, dtype.type_name());
    std::optional<Dtype> parsed_dtype = dtype_from_code(dtype.get<std::string>());
    if (!parsed_dtype)
      fail("tensor '{}': dtype '{}' is not supported (xgrad reads F32, F64 and I64)", name, dtype.get<std::string>());
    entry.dtype = *parsed_dtype;

    const Json& shape = value.at("shape");
    if (!shape.is_array()) fail("tensor '{}': \"shape\" must be an array of non-negative integers, got {}", name, shape.type_name());
    uint64_t numel = 1, nonzero_product = 1;
    bool overflow = false;
    for (const Json& size : shape) {
      if (size.is_number_integer() && !size.is_number_unsigned() && size.get<int64_t>() < 0)
        fail("tensor '{}': \"shape\" {} has a negative dimension", name, excerpt(shape));
      std::optional<uint64_t> count = as_count(size);
      if (!count) fail("tensor '{}': \"shape\" must be an array of non-negative integers, got {}", name, excerpt(shape));
      entry.shape.push_back(static_cast<int64_t>(*count));
      overflow = overflow || __builtin_mul_overflow(numel, *count, &numel);
      // An empty tensor's other sizes still multiply into its strides: [0, 2^40, 2^40] must not overflow them.
      if (*count != 0) overflow = overflow || __builtin_mul_overflow(nonzero_product, *count, &nonzero_product);
    }
    overflow = overflow || nonzero_product > static_cast<uint64_t>(INT64_MAX) / 8;
    uint64_t expected_bytes = 0;
    overflow = overflow || __builtin_mul_overflow(numel, item_size(entry.dtype), &expected_bytes) ||
               expected_bytes > static_cast<uint64_t>(INT64_MAX);
    if (overflow) fail("tensor '{}': the byte size of shape {} overflows", name, excerpt(shape));

    const Json& offsets = value.at("data_offsets");
    std::optional<uint64_t> begin, end;
    if (offsets.is_array() && offsets.size() == 2) {
      begin = as_count(offsets[0]);
      end = as_count(offsets[1]);
    }
    if (!begin || !end) fail("tensor '{}': \"data_offsets\" must be [begin, end] with non-negative integers, got {}", name, excerpt(offsets));
    if (*end < *begin) fail("tensor '{}': data_offsets [{}, {}] end before they begin", name, *begin, *end);
    if (*end > data_size_)
      fail("tensor '{}': data_offsets [{}, {}] run past the end of the data buffer ({} bytes)", name, *begin, *end, data_size_);
    if (*end - *begin != expected_bytes)
      fail("tensor '{}': data_offsets [{}, {}] hold {} bytes, but dtype {} and shape {} need {}", name, *begin, *end, *end - *begin,
           dtype.get<std::string>(), excerpt(shape), expected_bytes);
    entry.begin = *begin;
    entry.end = *end;
    return entry;
  }

  /// The format requires the tensors to tile the data buffer exactly: no overlap, no gap, no tail.
  void check_coverage(const std::vector<Entry>& entries) const {
    std::vector<const Entry*> sorted;
    for (const Entry& entry : entries) sorted.push_back(&entry);
    std::sort(sorted.begin(), sorted.end(),
              [](const Entry* a, const Entry* b) { return std::tie(a->begin, a->end) < std::tie(b->begin, b->end); });
    uint64_t cursor = 0;
    const Entry* previous = nullptr;
    for (const Entry* entry : sorted) {
      if (entry->begin < cursor)
        fail("tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data buffer", previous->name, previous->begin, previous->end,
             entry->name, entry->begin, entry->end);
      if (entry->begin > cursor)
        fail("a gap: bytes [{}, {}) of the data buffer belong to no tensor (the next is '{}')", cursor, entry->begin, entry->name);
      cursor = entry->end;
      if (entry->end > entry->begin) previous = entry;
    }
    if (cursor != data_size_) fail("trailing data: {} bytes after the last tensor's data belong to no tensor", data_size_ - cursor);
  }

  std::string op_, path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  uint64_t data_start_ = 0;
  uint64_t data_size_ = 0;
};

}  // namespace

void save_safetensors(const OrderedDict<Tensor>& tensors, const std::string& path, const std::map<std::string, std::string>& metadata) {
  write_safetensors("save_safetensors", tensors.items(), path, metadata);
}

OrderedDict<Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  return Reader("load_safetensors", path).read(metadata);
}

void save_tensors(const std::map<std::string, Tensor>& tensors, const std::string& path, const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> items(tensors.begin(), tensors.end());
  write_safetensors("save_tensors", items, path, metadata);
}

std::map<std::string, Tensor> load_tensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  OrderedDict<Tensor> loaded = Reader("load_tensors", path).read(metadata);
  std::map<std::string, Tensor> result;
  for (auto& [name, tensor] : loaded) result.emplace(name, tensor);
  return result;
}

void save(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata) {
  write_safetensors("save", module.state_dict().items(), path, metadata);
}

void load(Module& module, const std::string& path, bool strict) {
  OrderedDict<Tensor> state = Reader("load", path).read(nullptr);
  try {
    // load_state_dict validates keys, shapes and dtype kinds before copying anything.
    module.load_state_dict(state, strict);
  } catch (const Error& error) {
    XG_ERROR("load: '{}': {}", path, error.what());
  }
}

}  // namespace xg::nn

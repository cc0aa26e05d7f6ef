#include "xgrad/nn/serialize.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <zlib.h>

namespace xg::nn {

namespace {

// Header objects are parsed into std::map-backed JSON (logarithmic lookups; the key order of the top
// level is recorded while parsing); ordered JSON only where the writer needs a fixed field order.
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

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
    case Dtype::Float32: return reinterpret_cast<const char*>(tensor.contiguous_data<float>());
    case Dtype::Float64: return reinterpret_cast<const char*>(tensor.contiguous_data<double>());
    case Dtype::Int64: return reinterpret_cast<const char*>(tensor.contiguous_data<int64_t>());
  }
  return nullptr;
}

char* raw_bytes_mutable(const Tensor& tensor) { return const_cast<char*>(raw_bytes(tensor)); }

/// The "crc32" metadata value (documented in serialize.hpp): CRC-32 of each tensor's name, "dtype shape"
/// and little-endian bytes in name order, then each metadata entry but the checksum itself. safetensors has
/// no checksum of its own; without this a flipped bit in the data would load silently as a wrong weight.
std::string checksum(const std::vector<std::pair<std::string, Tensor>>& tensors, const std::map<std::string, std::string>& metadata) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto feed = [&crc](const char* data, uint64_t bytes) {
    while (bytes > 0) {  // zlib takes uInt lengths
      const auto chunk = static_cast<uInt>(std::min<uint64_t>(bytes, uint64_t{1} << 30));
      crc = crc32(crc, reinterpret_cast<const Bytef*>(data), chunk);
      data += chunk;
      bytes -= chunk;
    }
  };
  auto feed_text = [&feed](const std::string& text) { feed(text.c_str(), text.size() + 1); };  // with the NUL: unambiguous
  std::vector<const std::pair<std::string, Tensor>*> by_name;
  for (const auto& item : tensors) by_name.push_back(&item);
  std::sort(by_name.begin(), by_name.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* item : by_name) {
    const Tensor& tensor = item->second;
    feed_text(item->first);
    feed_text(fmt::format("{} {}", dtype_name(tensor.dtype()), shape_string(tensor.shape())));
    const uint64_t item_bytes = item_size(tensor.dtype()), bytes = static_cast<uint64_t>(tensor.numel()) * item_bytes;
    if (bytes == 0) continue;
    if (kHostIsLittleEndian) {
      feed(raw_bytes(tensor), bytes);
    } else {  // the file's byte order, so a file checks out on any host
      std::string swapped(raw_bytes(tensor), bytes);
      swap_bytes(swapped.data(), bytes, item_bytes);
      feed(swapped.data(), bytes);
    }
  }
  for (const auto& [key, value] : metadata) {
    if (key == kChecksumMetadataKey) continue;
    feed_text(key);
    feed_text(value);
  }
  return fmt::format("{:08x}", static_cast<uint32_t>(crc));
}

/// Throws unless s is valid UTF-8 (the header is UTF-8 JSON; the JSON writer would reject it later).
void check_utf8(const std::string& op, const std::string& path, const char* what, const std::string& s) {
  try {
    (void)Json(s).dump();
  } catch (const Json::exception&) {
    XG_ERROR("{}: '{}': the {} '{}' is not valid UTF-8", op, path, what, s);
  }
}

// ---- writing --------------------------------------------------------------------------------------

// ---- atomic writes --------------------------------------------------------------------------------

/// The directory part of a path ("." for a bare name), and the name part.
std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}
std::string name_of(const std::string& path) { return path.substr(path.rfind('/') + 1); }

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a fifo";
  if (S_ISSOCK(mode)) return "a socket";
  return "of an unknown kind";
}

/// The file a write to `path` replaces: symlinks are followed (a relative target is relative to the link's
/// directory; a dangling link names the file to create), as open() would, so that renaming over the result
/// updates the file the link points to instead of turning the link into a copy. Anything but a regular file
/// or a missing one is refused: renaming over a device node or a fifo would replace it.
std::string resolve_write_target(const std::string& op, const std::string& path) {
  std::string current = path;
  for (int links = 0; links <= 40; ++links) {  // 40: the kernel's own limit (MAXSYMLINKS)
    struct stat info {};
    if (::lstat(current.c_str(), &info) != 0) {
      if (errno == ENOENT) return current;  // a new file (a missing directory fails when the temporary is created)
      XG_ERROR("{}: '{}': cannot inspect '{}': {}", op, path, current, errno_text(errno));
    }
    if (S_ISREG(info.st_mode)) return current;
    if (!S_ISLNK(info.st_mode)) {
      if (current == path) XG_ERROR("{}: '{}': it is {}, not a regular file; refusing to replace it", op, path, file_kind(info.st_mode));
      XG_ERROR("{}: '{}': the symlink points to '{}', which is {}, not a regular file; refusing to replace it", op, path, current,
               file_kind(info.st_mode));
    }
    std::string link(4096, '\0');
    ssize_t length = ::readlink(current.c_str(), link.data(), link.size());
    if (length < 0) XG_ERROR("{}: '{}': cannot read the symlink '{}': {}", op, path, current, errno_text(errno));
    if (static_cast<size_t>(length) >= link.size()) XG_ERROR("{}: '{}': the symlink '{}' is too long", op, path, current);
    link.resize(static_cast<size_t>(length));
    current = link.front() == '/' ? link : directory_of(current) + "/" + link;
  }
  XG_ERROR("{}: '{}': too many levels of symbolic links", op, path);
}

/// "." + the target's name (cut so the whole name stays under NAME_MAX) + ".xgrad.tmp.": every temporary
/// of one target starts with it, so a later write can find the ones a killed process left.
std::string temporary_prefix(const std::string& target) { return "." + name_of(target).substr(0, 160) + ".xgrad.tmp."; }

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  std::string host(name);
  std::replace(host.begin(), host.end(), '/', '_');
  return host.substr(0, 64);
}

/// Removes `<prefix><host>.<pid>.<n>` files in `directory` whose process is gone. Only this host's: a
/// directory shared over the network holds other machines' live temporaries, whose pids mean nothing here.
void remove_stale_temporaries(const std::string& directory, const std::string& prefix, const std::string& host) {
  DIR* listing = ::opendir(directory.c_str());
  if (listing == nullptr) return;  // best effort: the write itself reports a missing directory
  const std::string ours = prefix + host + ".";
  std::vector<std::string> stale;
  while (const dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    if (name.compare(0, ours.size(), ours) != 0) continue;
    const std::string rest = name.substr(ours.size());  // "<pid>.<n>"
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || dot > 9 || dot + 1 == rest.size()) continue;
    if (rest.find_first_not_of("0123456789.") != std::string::npos || rest.find('.', dot + 1) != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(rest.substr(0, dot)));
    if (pid <= 0 || pid == ::getpid()) continue;  // this process's own temporaries belong to writes in progress
    if (::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(directory + "/" + name);
  }
  ::closedir(listing);
  for (const std::string& path : stale) (void)::unlink(path.c_str());
}

/// Collects small writes into one buffer so a model of many tiny tensors costs few system calls.
class BufferedWriter {
 public:
  explicit BufferedWriter(AtomicFile& file) : file_(file) { buffer_.reserve(kWriteBufferBytes); }
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
  AtomicFile& file_;
  std::vector<char> buffer_;
};

std::string little_endian_u64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

void write_safetensors(const std::string& op, const std::vector<std::pair<std::string, Tensor>>& given, const std::string& path,
                       const std::map<std::string, std::string>& metadata) {
  XG_CHECK(!path.empty(), "{}: the path is empty", op);
  // The format stores each tensor's elements densely: a view is written as its own elements (the
  // same bytes and checksum as a contiguous copy), tensors sharing storage as independent copies.
  std::vector<std::pair<std::string, Tensor>> tensors = given;
  for (auto& entry : tensors)
    if (entry.second.defined() && !entry.second.is_contiguous()) entry.second = entry.second.detach().contiguous();
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
  // writer's order (dtype, shape, data_offsets); compact JSON padded with spaces to 8 bytes. The top-level
  // object is joined by hand: an ordered JSON object looks each key up linearly, quadratic in the tensors.
  std::map<std::string, std::string> stored_metadata = metadata;
  stored_metadata[kChecksumMetadataKey] = checksum(tensors, metadata);
  std::string header_text = "{";
  header_text += Json(kMetadataKey).dump() + ":" + Json(stored_metadata).dump();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& tensor = tensors[i].second;
    OrderedJson entry = OrderedJson::object();
    entry["dtype"] = dtype_code(tensor.dtype());
    entry["shape"] = OrderedJson::array();
    for (int64_t size : tensor.shape()) entry["shape"].push_back(size);
    entry["data_offsets"] = OrderedJson::array({offsets[i].first, offsets[i].second});
    header_text += "," + Json(tensors[i].first).dump() + ":" + entry.dump();
  }
  header_text += "}";
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  XG_CHECK(header_text.size() <= kMaxHeaderBytes, "{}: '{}': the header would be {} bytes, above the format's limit of {}", op, path,
           header_text.size(), kMaxHeaderBytes);

  AtomicFile file(op, path);
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

/// The keys of a JSON text, in one linear pass: JSON parsers keep the last of duplicate keys silently (a
/// checkpoint with two values for one name is corrupt), and a std::map-backed document forgets the order of
/// the top-level keys (the order of the tensors). A parse callback could see the keys too, but the callback
/// parser rescans the enclosing object after each child object: quadratic in the tensors (40 s at 100,000).
struct KeyTracker : nlohmann::json_sax<Json> {
  std::vector<std::set<std::string>> open_objects;  // the keys seen so far in each enclosing object
  std::vector<std::string> top_level;
  std::optional<std::string> duplicate;

  bool start_object(std::size_t) override {
    open_objects.emplace_back();
    return true;
  }
  bool end_object() override {
    open_objects.pop_back();
    return true;
  }
  bool key(string_t& key) override {
    if (!open_objects.back().insert(key).second && !duplicate) duplicate = key;
    if (open_objects.size() == 1) top_level.push_back(key);
    return true;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
};

class Reader {
 public:
  Reader(std::string op, std::string path) : op_(std::move(op)), path_(std::move(path)) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// The tensors in header order.
  std::vector<std::pair<std::string, Tensor>> read(std::map<std::string, std::string>* metadata_out) {
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

    check_nesting(header_text);
    std::vector<std::string> key_order;
    Json header = parse_header(header_text, key_order);
    std::map<std::string, std::string> metadata;
    std::vector<Entry> entries;
    for (const std::string& key : key_order) {
      const Json& value = header.at(key);
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
        read_data(entry.begin, destination, bytes);
        if (!kHostIsLittleEndian) swap_bytes(destination, bytes, item_size(entry.dtype));
      }
      tensors[i] = std::move(tensor);
    }
    std::vector<std::pair<std::string, Tensor>> result;
    result.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) result.emplace_back(entries[i].name, std::move(tensors[i]));
    auto stored = metadata.find(kChecksumMetadataKey);
    if (stored != metadata.end()) {
      const std::string computed = checksum(result, metadata);
      if (stored->second != computed)
        fail("the checksum does not match (stored {}, computed {}): the file is corrupt", excerpt(Json(stored->second)), computed);
    }
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

  /// Refuses JSON nested deeper than the format needs (the object of tensors > a tensor's entry > its shape)
  /// before parsing: the JSON library recurses once per level, and a header nested 140,000 deep overflowed
  /// the stack. A linear scan that skips strings (and the escapes within them).
  void check_nesting(const std::string& text) const {
    constexpr int kMaxDepth = 3;
    int depth = 0;
    bool in_string = false;
    for (size_t at = 0; at < text.size(); ++at) {
      const char c = text[at];
      if (in_string) {
        if (c == '\\') ++at;  // the escaped character cannot end the string
        else if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        if (++depth > kMaxDepth)
          fail("the header nests JSON deeper than {} levels (at byte {}), more than a safetensors header has", kMaxDepth, at);
      } else if (c == '}' || c == ']') {
        --depth;  // unbalanced brackets are the parser's to report
      }
    }
  }

  /// The header as JSON; key_order receives its top-level keys in file order.
  /// Bytes [begin, begin + bytes) of the data buffer. The tensors are read in file order, so small ones
  /// come out of one buffer read front to back: 100,000 tiny tensors cost a few reads, not 100,000.
  void read_data(uint64_t begin, char* destination, uint64_t bytes) {
    if (bytes >= kWriteBufferBytes) {
      read_at(data_start_ + begin, destination, bytes);
      return;
    }
    if (begin < chunk_begin_ || begin + bytes > chunk_begin_ + chunk_.size()) {
      chunk_.resize(std::min<uint64_t>(std::max<uint64_t>(kWriteBufferBytes, bytes), data_size_ - begin));
      chunk_begin_ = begin;
      read_at(data_start_ + begin, chunk_.data(), chunk_.size());
    }
    std::memcpy(destination, chunk_.data() + (begin - chunk_begin_), bytes);
  }

  Json parse_header(const std::string& text, std::vector<std::string>& key_order) const {
    Json header;
    try {
      header = Json::parse(text.begin(), text.end());
    } catch (const Json::exception& error) {
      // parse_error for bad syntax, out_of_range for numbers such as 1e400 (found by fuzz_safetensors).
      // The parser's message quotes the offending token, which may be as long as the header.
      std::string reason = error.what();
      if (reason.size() > 300) reason = reason.substr(0, 300) + "...";
      fail("the header is not valid JSON: {}", reason);
    }
    KeyTracker keys;
    Json::sax_parse(text.begin(), text.end(), &keys);  // valid JSON: cannot fail
    if (keys.duplicate) fail("duplicate key '{}' in the header", *keys.duplicate);
    if (!header.is_object()) fail("the header is not a JSON object (it is {})", header.type_name());
    key_order = std::move(keys.top_level);
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
  std::vector<char> chunk_;  // read_data's buffer: data bytes [chunk_begin_, chunk_begin_ + size)
  uint64_t chunk_begin_ = 0;
};

/// The tensors in file order as a dict.
OrderedDict<Tensor> to_dict(std::vector<std::pair<std::string, Tensor>> tensors) {
  OrderedDict<Tensor> dict;
  for (auto& [name, tensor] : tensors) dict.insert(name, std::move(tensor));
  return dict;
}

}  // namespace

// ---- AtomicFile -----------------------------------------------------------------------------------

AtomicFile::AtomicFile(std::string op, std::string path) : op_(std::move(op)), path_(std::move(path)) {
  XG_CHECK(!path_.empty(), "{}: the path is empty", op_);
  XG_CHECK(path_.back() != '/', "{}: '{}': the path names a directory, not a file", op_, path_);
  target_ = resolve_write_target(op_, path_);
  const std::string directory = directory_of(target_), prefix = temporary_prefix(target_), host = host_name();
  remove_stale_temporaries(directory, prefix, host);
  // Unique among this process's writes (threads saving the same file) and across processes (the pid).
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temporary_ = fmt::format("{}/{}{}.{}.{}", directory, prefix, host, static_cast<long>(::getpid()), counter++);
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && errno != EEXIST)  // EEXIST: left by a dead process whose pid this one reuses; take the next number
      XG_ERROR("{}: '{}': cannot create the temporary file '{}': {}", op_, path_, temporary_, errno_text(errno));
  }
  XG_CHECK(fd_ >= 0, "{}: '{}': cannot create a temporary file next to '{}' (every name was taken)", op_, path_, target_);
  // Replacing a file keeps its permission bits (a checkpoint made private stays private) and, where
  // allowed (root), its owner.
  struct stat existing {};
  if (::stat(target_.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)) {
    (void)::fchown(fd_, existing.st_uid, existing.st_gid);
    (void)::fchmod(fd_, existing.st_mode & 07777);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_.c_str());
}

void AtomicFile::write(const char* data, uint64_t bytes) {
  while (bytes > 0) {
    ssize_t written = ::write(fd_, data, std::min<uint64_t>(bytes, uint64_t{1} << 30));
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0)
      XG_ERROR("{}: '{}': cannot write the temporary file '{}': {}", op_, path_, temporary_, errno_text(written < 0 ? errno : EIO));
    data += written;
    bytes -= static_cast<uint64_t>(written);
  }
}

void AtomicFile::commit() {
  XG_CHECK(fd_ >= 0 && !committed_, "{}: '{}': the file was already committed", op_, path_);
  if (::fsync(fd_) != 0) XG_ERROR("{}: '{}': cannot flush the temporary file '{}' to disk: {}", op_, path_, temporary_, errno_text(errno));
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) XG_ERROR("{}: '{}': cannot close the temporary file '{}': {}", op_, path_, temporary_, errno_text(errno));
  if (::rename(temporary_.c_str(), target_.c_str()) != 0)
    XG_ERROR("{}: '{}': cannot rename '{}' over '{}': {}", op_, path_, temporary_, target_, errno_text(errno));
  committed_ = true;
  // Best effort: some file systems cannot fsync a directory, and the data itself is already safe.
  int dir_fd = ::open(directory_of(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void save_safetensors(const OrderedDict<Tensor>& tensors, const std::string& path, const std::map<std::string, std::string>& metadata) {
  write_safetensors("save_safetensors", tensors.items(), path, metadata);
}

OrderedDict<Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  return to_dict(Reader("load_safetensors", path).read(metadata));
}

void save_tensors(const std::map<std::string, Tensor>& tensors, const std::string& path, const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> items(tensors.begin(), tensors.end());
  write_safetensors("save_tensors", items, path, metadata);
}

std::map<std::string, Tensor> load_tensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  std::vector<std::pair<std::string, Tensor>> loaded = Reader("load_tensors", path).read(metadata);
  return std::map<std::string, Tensor>(std::make_move_iterator(loaded.begin()), std::make_move_iterator(loaded.end()));
}

void save(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata) {
  write_safetensors("save", module.state_dict().items(), path, metadata);
}

void load(Module& module, const std::string& path, bool strict) {
  OrderedDict<Tensor> state = to_dict(Reader("load", path).read(nullptr));
  try {
    // load_state_dict validates keys, shapes and dtype kinds before copying anything.
    module.load_state_dict(state, strict);
  } catch (const Error& error) {
    XG_ERROR("load: '{}': {}", path, error.what());
  }
}

}  // namespace xg::nn

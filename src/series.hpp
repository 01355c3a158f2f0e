// Internal: how the metrics facade records without locks or allocation.
//
// A SeriesTable maps label values to a series through an open-addressing table that readers
// probe with acquire loads only; inserts take a mutex, and a table that grows is replaced
// whole (old generations stay alive until the table is destroyed, as readers may hold them).
// Each series owns striped cells: a thread adds to the stripe of the CPU it runs on, so two
// threads recording the same series at once write different cache lines. flush() moves the
// stripes' contents into the prometheus-cpp metric that the registry serializes.
#pragma once

#include <sched.h>
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#endif

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Counter;
class Histogram;
}  // namespace prometheus

namespace ccproxy::observability::detail {

inline constexpr std::size_t kStripes = 8;
// Histogram buckets a series can hold, the +Inf bucket included.
inline constexpr std::size_t kMaxBuckets = 15;

// The stripe of the calling thread: the CPU it runs on, so threads running at the same time
// write different cache lines. A thread moved between reading its CPU and writing still
// writes correctly (the write is atomic), it may just share a line for that one call.
// Limitation: with more than kStripes CPUs, CPUs kStripes apart share a stripe.
inline std::size_t this_thread_stripe() noexcept {
#if defined(RSEQ_SIG) && defined(__GNUC__)
  // glibc registers each thread's rseq area, where the kernel keeps the current CPU.
  if (__rseq_size != 0) {
    const auto* area = reinterpret_cast<const struct rseq*>(
        static_cast<const char*>(__builtin_thread_pointer()) + __rseq_offset);
    return static_cast<std::size_t>(__atomic_load_n(&area->cpu_id_start, __ATOMIC_RELAXED)) %
           kStripes;
  }
#endif
  int cpu = sched_getcpu();
  return static_cast<std::size_t>(cpu < 0 ? 0 : cpu) % kStripes;
}

inline void atomic_add(std::atomic<double>& a, double v) noexcept {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

inline std::uint32_t load32(const char* p) noexcept {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// The bytes of a short string (< 8 bytes) folded into one word without a variable-length
// copy: two overlapping 4-byte loads, or first, middle and last byte.
inline std::uint64_t short_word(const char* p, std::size_t n) noexcept {
  if (n >= 4) return (static_cast<std::uint64_t>(load32(p)) << 32) | load32(p + n - 4);
  if (n == 0) return 0;
  return (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
         (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) |
         static_cast<unsigned char>(p[n - 1]);
}

// A seeded 64-bit hash of one string, reading whole words (the last one overlapping).
inline std::uint64_t hash_one(std::string_view v, std::uint64_t seed) noexcept {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  auto step = [](std::uint64_t h, std::uint64_t w) {
    h = (h ^ w) * kMul;
    return h ^ (h >> 29);
  };
  const char* p = v.data();
  const std::size_t len = v.size();
  std::uint64_t h = seed ^ (len * kMul);
  if (len < 8) return step(h, short_word(p, len));
  for (std::size_t k = 0; k + 8 < len; k += 8) h = step(h, load64(p + k));
  return step(h, load64(p + len - 8));
}

// A seeded hash of a sequence of strings. Each string is hashed on its own, so the CPU works
// on all of them at once, and the results are combined in order.
inline std::uint64_t hash_values(const std::string_view* values, std::size_t n,
                                 std::uint64_t seed) noexcept {
  std::uint64_t h = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t x = hash_one(values[i], seed + i);
    h ^= (x << (7 * i)) | (x >> ((64 - 7 * i) & 63));
  }
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  return h;
}

// Byte equality of two strings of the same length `n`, a word at a time.
inline bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
  // For n < 8, short_word reads every byte, so equal words mean equal strings.
  if (n < 8) return short_word(a, n) == short_word(b, n);
  std::size_t k = 0;
  for (; k + 8 < n; k += 8) {
    if (load64(a + k) != load64(b + k)) return false;
  }
  return load64(a + n - 8) == load64(b + n - 8);
}

struct alignas(64) CountStripe {
  std::atomic<std::uint64_t> value{0};
};
struct alignas(64) SumStripe {
  std::atomic<double> value{0.0};
};
struct alignas(64) HistogramStripe {
  std::array<std::atomic<std::uint64_t>, kMaxBuckets> buckets{};
  std::atomic<double> sum{0.0};
};

// A counter series counting whole numbers.
struct CountCell {
  prometheus::Counter* target = nullptr;
  std::array<CountStripe, kStripes> stripes;

  void add(std::uint64_t n) noexcept {
    stripes[this_thread_stripe()].value.fetch_add(n, std::memory_order_relaxed);
  }
  void flush();
};

// A counter series summing doubles.
struct SumCell {
  prometheus::Counter* target = nullptr;
  std::array<SumStripe, kStripes> stripes;

  void add(double v) noexcept { atomic_add(stripes[this_thread_stripe()].value, v); }
  void flush();
};

// A histogram series with at most kMaxBuckets - 1 finite bounds.
struct HistogramCell {
  prometheus::Histogram* target = nullptr;
  // The bounds, copied in so observe() reads them from the cell's own cache line.
  std::array<double, kMaxBuckets - 1> bounds{};
  std::size_t bound_count = 0;
  std::array<HistogramStripe, kStripes> stripes;

  void set_bounds(const std::vector<double>& b) noexcept {
    bound_count = b.size() < bounds.size() ? b.size() : bounds.size();
    for (std::size_t i = 0; i < bound_count; ++i) bounds[i] = b[i];
  }

  void observe(double v) noexcept {
    // Buckets are inclusive upper bounds, as in prometheus-cpp: v goes to the first b >= v.
    std::size_t i = 0;
    while (i < bound_count && v > bounds[i]) ++i;
    HistogramStripe& s = stripes[this_thread_stripe()];
    s.buckets[i].fetch_add(1, std::memory_order_relaxed);
    atomic_add(s.sum, v);
  }
  void flush();
};

template <std::size_t N, typename Cell>
class SeriesTable {
 public:
  using Values = std::array<std::string_view, N>;

  SeriesTable(std::size_t max_entries, std::uint64_t seed)
      : max_entries_(max_entries), seed_(seed) {
    tables_.push_back(make_table(64));
    table_.store(tables_.back().get(), std::memory_order_release);
  }
  SeriesTable(const SeriesTable&) = delete;
  SeriesTable& operator=(const SeriesTable&) = delete;

  std::uint64_t hash(const Values& values) const noexcept {
    return hash_values(values.data(), N, seed_);
  }

  // Lock-free and allocation-free.
  Cell* find(std::uint64_t h, const Values& values) const noexcept {
    const Table* t = table_.load(std::memory_order_acquire);
    for (std::size_t i = h & t->mask;; i = (i + 1) & t->mask) {
      Entry* e = t->slots[i].load(std::memory_order_acquire);
      if (e == nullptr) return nullptr;
      if (e->hash == h && equal(*e, values)) return &e->cell;
    }
  }

  // Returns the cell for `values`, creating it with `init(cell, values)` when the table has
  // room; nullptr when it is full. `init` may throw, and then nothing is inserted.
  template <typename Init>
  Cell* insert(std::uint64_t h, const Values& values, Init&& init) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Cell* c = find(h, values)) return c;
    if (entries_.size() >= max_entries_) return nullptr;
    auto entry = std::make_unique<Entry>();
    entry->hash = h;
    for (std::size_t i = 0; i < N; ++i) entry->values[i] = std::string(values[i]);
    init(entry->cell, values);
    Table* t = table_.load(std::memory_order_relaxed);
    if ((entries_.size() + 1) * 2 > t->mask + 1) t = grow();
    place(*t, entry.get());
    entries_.push_back(std::move(entry));
    return &entries_.back()->cell;
  }

  template <typename F>
  void for_each(F&& f) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& e : entries_) f(e->cell);
  }

  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::uint64_t hash = 0;
    std::array<std::string, N> values;
    Cell cell;
  };
  struct Table {
    std::size_t mask = 0;
    std::unique_ptr<std::atomic<Entry*>[]> slots;
  };

  static std::unique_ptr<Table> make_table(std::size_t capacity) {
    auto t = std::make_unique<Table>();
    t->mask = capacity - 1;
    t->slots = std::make_unique<std::atomic<Entry*>[]>(capacity);
    for (std::size_t i = 0; i < capacity; ++i) t->slots[i].store(nullptr);
    return t;
  }

  static bool equal(const Entry& e, const Values& values) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      const std::string& a = e.values[i];
      if (a.size() != values[i].size() || !same_bytes(a.data(), values[i].data(), a.size())) {
        return false;
      }
    }
    return true;
  }

  static void place(Table& t, Entry* e) noexcept {
    std::size_t i = e->hash & t.mask;
    while (t.slots[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & t.mask;
    t.slots[i].store(e, std::memory_order_release);
  }

  // Builds a table twice the size, publishes it, and keeps the old one for readers still
  // probing it.
  Table* grow() {
    auto bigger = make_table((table_.load(std::memory_order_relaxed)->mask + 1) * 2);
    for (auto& e : entries_) place(*bigger, e.get());
    table_.store(bigger.get(), std::memory_order_release);
    tables_.push_back(std::move(bigger));
    return tables_.back().get();
  }

  std::atomic<Table*> table_{nullptr};
  std::vector<std::unique_ptr<Table>> tables_;   // guarded by mutex_
  std::vector<std::unique_ptr<Entry>> entries_;  // guarded by mutex_
  const std::size_t max_entries_;
  const std::uint64_t seed_;
  mutable std::mutex mutex_;
};

}  // namespace ccproxy::observability::detail

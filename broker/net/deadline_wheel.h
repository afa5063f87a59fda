// One coarse timing wheel per worker for connection deadlines (CONNECT timeout, keepalive).
// A per-connection Asio timer costs a timer object, an outstanding wait operation and a heap
// entry (about 200 bytes); an entry here is three pointers and a time. Deadlines fire up to one
// tick late, which the keepalive rule (1.5 x keepalive, then close) easily absorbs.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

namespace meshmq::net {

class DeadlineWheel {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kTick = std::chrono::milliseconds(100);

  class Entry {
   public:
    virtual ~Entry() { unlink(); }
    bool scheduled() const { return next_ != nullptr; }

   protected:
    virtual void on_deadline() = 0;

   private:
    friend class DeadlineWheel;
    void unlink() {
      if (next_ == nullptr) return;
      prev_->next_ = next_;
      next_->prev_ = prev_;
      prev_ = next_ = nullptr;
    }
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
    Clock::time_point deadline_{};
  };

  DeadlineWheel();
  DeadlineWheel(const DeadlineWheel&) = delete;
  DeadlineWheel& operator=(const DeadlineWheel&) = delete;
  ~DeadlineWheel();

  void schedule(Entry& entry, Clock::time_point deadline);
  void cancel(Entry& entry) { entry.unlink(); }
  // Fires every entry whose deadline is at or before `now`. Call once per tick.
  void advance(Clock::time_point now);

 private:
  struct Sentinel final : Entry {
    void on_deadline() override {}
  };
  static constexpr std::size_t kSlots = 512;  // 51.2 s per turn; later deadlines wait for turns
  std::size_t slot_of(Clock::time_point t) const;
  void link(Sentinel& list, Entry& entry);

  std::vector<Sentinel> slots_;
  Clock::time_point origin_;
  std::size_t next_slot_tick_ = 0;  // ticks since origin_ already processed
};

}  // namespace meshmq::net

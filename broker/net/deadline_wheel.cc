#include "broker/net/deadline_wheel.h"

namespace meshmq::net {

DeadlineWheel::DeadlineWheel() : slots_(kSlots), origin_(Clock::now()) {
  for (Sentinel& s : slots_) s.prev_ = s.next_ = &s;
}

DeadlineWheel::~DeadlineWheel() {
  // Detach whatever is left so entries outliving the wheel do not touch freed sentinels.
  for (Sentinel& s : slots_) {
    while (s.next_ != &s) s.next_->unlink();
    s.prev_ = s.next_ = nullptr;
  }
}

std::size_t DeadlineWheel::slot_of(Clock::time_point t) const {
  auto ticks = t <= origin_ ? 0 : static_cast<std::size_t>((t - origin_) / kTick);
  // Never behind the slot being processed: a past deadline fires on the next advance().
  if (ticks < next_slot_tick_) ticks = next_slot_tick_;
  return ticks % kSlots;
}

void DeadlineWheel::link(Sentinel& list, Entry& entry) {
  entry.prev_ = list.prev_;
  entry.next_ = &list;
  list.prev_->next_ = &entry;
  list.prev_ = &entry;
}

void DeadlineWheel::schedule(Entry& entry, Clock::time_point deadline) {
  entry.unlink();
  entry.deadline_ = deadline;
  link(slots_[slot_of(deadline)], entry);
}

void DeadlineWheel::advance(Clock::time_point now) {
  if (now < origin_) return;
  const auto now_tick = static_cast<std::size_t>((now - origin_) / kTick);
  while (next_slot_tick_ <= now_tick) {
    Sentinel& slot = slots_[next_slot_tick_ % kSlots];
    // From here on slot_of() places nothing before the next slot, so firing or re-linking an
    // entry never puts it back on the list being drained.
    ++next_slot_tick_;
    Sentinel due;
    due.prev_ = due.next_ = &due;
    if (slot.next_ != &slot) {
      due.next_ = slot.next_;
      due.prev_ = slot.prev_;
      due.next_->prev_ = &due;
      due.prev_->next_ = &due;
      slot.prev_ = slot.next_ = &slot;
    }
    while (due.next_ != &due) {
      Entry& e = *due.next_;
      e.unlink();
      if (e.deadline_ <= now) {
        e.on_deadline();
      } else {
        link(slots_[slot_of(e.deadline_)], e);  // due on a later turn of the wheel
      }
    }
    due.prev_ = due.next_ = nullptr;
  }
}

}  // namespace meshmq::net

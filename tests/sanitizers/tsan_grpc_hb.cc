// Linked into meshmq only in the TSan build (MESHMQ_SANITIZE=thread).
//
// Debian's gRPC is not built with TSan, so TSan does not see how gRPC orders a batch's start
// (StartRead/StartWrite/StartCall/Finish on one thread) before its completion (the reactor's
// OnReadDone etc. on a gRPC callback thread). Every hand-off of a stream or a message through gRPC
// then looks like a race, in gRPC's inline header code and in ours. These wrappers interpose
// functions that the gRPC libraries call through the PLT and state the ordering they provide:
// - a batch's start releases its tag, and the completion queue that returns the tag acquires it;
// - a server stream's OnDone comes after its last reference is dropped (the count is an atomic
//   that libgrpc++ also decrements, unseen);
// - abseil's Mutex (gRPC's mutex, also under gpr_mu and its executor queues): unlock releases the
//   mutex, lock acquires it, a condition variable wait does both.
// They add no ordering that gRPC does not provide, so races between our own threads stay visible.
// What gRPC orders only with atomics inside its libraries stays unseen: tests/sanitizers/tsan.supp.
#include <absl/synchronization/mutex.h>
#include <dlfcn.h>
#include <grpc/grpc.h>
#include <grpcpp/support/server_callback.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

namespace {

template <class Fn>
Fn real(const char* name) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (!fn) {
    std::fprintf(stderr, "tsan_grpc_hb: %s not found\n", name);
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

}  // namespace

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops, void* tag,
                                      void* reserved) {
  static const auto fn = real<decltype(&grpc_call_start_batch)>("grpc_call_start_batch");
  __tsan_release(tag);
  return fn(call, ops, nops, tag, reserved);
}

grpc_call_error grpc_server_request_call(grpc_server* server, grpc_call** call,
                                         grpc_call_details* details,
                                         grpc_metadata_array* request_metadata,
                                         grpc_completion_queue* cq_bound_to_call,
                                         grpc_completion_queue* cq_for_notification,
                                         void* tag_new) {
  static const auto fn = real<decltype(&grpc_server_request_call)>("grpc_server_request_call");
  __tsan_release(tag_new);
  return fn(server, call, details, request_metadata, cq_bound_to_call, cq_for_notification,
            tag_new);
}

grpc_call_error grpc_server_request_registered_call(grpc_server* server, void* registered_method,
                                                    grpc_call** call, gpr_timespec* deadline,
                                                    grpc_metadata_array* request_metadata,
                                                    grpc_byte_buffer** optional_payload,
                                                    grpc_completion_queue* cq_bound_to_call,
                                                    grpc_completion_queue* cq_for_notification,
                                                    void* tag_new) {
  static const auto fn =
      real<decltype(&grpc_server_request_registered_call)>("grpc_server_request_registered_call");
  __tsan_release(tag_new);
  return fn(server, registered_method, call, deadline, request_metadata, optional_payload,
            cq_bound_to_call, cq_for_notification, tag_new);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue* cq, gpr_timespec deadline,
                                      void* reserved) {
  static const auto fn = real<decltype(&grpc_completion_queue_next)>("grpc_completion_queue_next");
  grpc_event ev = fn(cq, deadline, reserved);
  if (ev.type == GRPC_OP_COMPLETE) __tsan_acquire(ev.tag);
  return ev;
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag, gpr_timespec deadline,
                                       void* reserved) {
  static const auto fn =
      real<decltype(&grpc_completion_queue_pluck)>("grpc_completion_queue_pluck");
  grpc_event ev = fn(cq, tag, deadline, reserved);
  if (ev.type == GRPC_OP_COMPLETE) __tsan_acquire(ev.tag);
  return ev;
}

}  // extern "C"

namespace grpc::internal {

// Runs on the thread that dropped the last reference. Our reactions and gRPC's inline callbacks
// drop theirs with an instrumented fetch_sub on callbacks_outstanding_; when the last one is
// dropped inside libgrpc++, TSan misses that it follows them. OnDone is then handed to gRPC's
// executor under an abseil mutex, which the wrappers below make visible.
void ServerCallbackCall::ScheduleOnDone(bool inline_ondone) {
  static const auto fn = real<void (*)(ServerCallbackCall*, bool)>(
      "_ZN4grpc8internal18ServerCallbackCall14ScheduleOnDoneEb");
  __tsan_acquire(&callbacks_outstanding_);
  fn(this, inline_ondone);
}

}  // namespace grpc::internal

namespace absl {

void Mutex::Lock() {
  static const auto fn = real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex4LockEv");
  fn(this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  static const auto fn = real<bool (*)(Mutex*)>("_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = fn(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static const auto fn = real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(this);
  fn(this);
}

void ReleasableMutexLock::Release() {
  static const auto fn =
      real<void (*)(ReleasableMutexLock*)>("_ZN4absl7debian319ReleasableMutexLock7ReleaseEv");
  // Its only member is the Mutex* (mutex.h); Release may unlock it without the PLT.
  __tsan_release(*reinterpret_cast<Mutex**>(this));
  fn(this);
}

void CondVar::Wait(Mutex* mu) {
  static const auto fn =
      real<void (*)(CondVar*, Mutex*)>("_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  fn(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto fn = real<bool (*)(CondVar*, Mutex*, Duration)>(
      "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  const bool r = fn(this, mu, timeout);
  __tsan_acquire(mu);
  return r;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto fn = real<bool (*)(CondVar*, Mutex*, Time)>(
      "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  const bool r = fn(this, mu, deadline);
  __tsan_acquire(mu);
  return r;
}

}  // namespace absl

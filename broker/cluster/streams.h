// The two ends of a Link stream (proto/cluster.proto) on gRPC's callback API: OutStream is the
// stream this node dialled (it is the origin), InStream one another node dialled. Both hand every
// frame they read to a FrameSink and queue writes, one outstanding at a time as gRPC requires.
//
// Lifetime: each stream holds a reference to itself until gRPC's OnDone, so the node may keep
// shared_ptrs to streams that have ended; writes to an ended stream are dropped. Writes start under
// the stream's mutex so that none can start after the stream decided to end (which would be use
// after free inside gRPC); the mutex is recursive because gRPC may run OnWriteDone inline.
// Included only by the node*.cc files (via node_impl.h): generated and gRPC headers stay out of
// every other TU.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>

#include "proto/cluster.grpc.pb.h"

namespace meshmq::cluster {

namespace pb = meshmq::cluster::v1;

class OutStream;
class InStream;

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void on_frame(OutStream& s, const pb::Frame& f) = 0;
  virtual void on_frame(InStream& s, const pb::Frame& f) = 0;
  virtual void on_done(OutStream& s, const grpc::Status& status) = 0;
  virtual void on_done(InStream& s) = 0;
  std::atomic<int> live_streams{0};
};

// Write queue shared by both ends; Base is the gRPC reactor type.
template <class Base>
class Writer : public Base {
 public:
  void write(pb::Frame frame) {
    std::lock_guard lock(mu_);
    if (closing_) return;
    if (writing_) {
      queue_.push_back(std::move(frame));
      return;
    }
    writing_ = true;
    current_ = std::move(frame);
    this->StartWrite(&current_);
  }
  bool closing() {
    std::lock_guard lock(mu_);
    return closing_;
  }

 protected:
  // Returns true when the caller should finish the stream now (nothing is being written).
  bool write_done(bool ok) {
    std::lock_guard lock(mu_);
    if (!ok || closing_ || queue_.empty()) {
      writing_ = false;
      if (!ok) queue_.clear();
      return closing_ && !finish_started_ && (finish_started_ = true);
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    this->StartWrite(&current_);
    return false;
  }
  // Marks the stream closing; returns true when the caller may finish it immediately.
  bool begin_close() {
    std::lock_guard lock(mu_);
    closing_ = true;
    queue_.clear();
    if (writing_ || finish_started_) return false;
    finish_started_ = true;
    return true;
  }

  std::recursive_mutex mu_;
  std::deque<pb::Frame> queue_;
  pb::Frame current_;
  bool writing_ = false;
  bool closing_ = false;
  bool finish_started_ = false;
};

class OutStream final : public Writer<grpc::ClientBidiReactor<pb::Frame, pb::Frame>>,
                        public std::enable_shared_from_this<OutStream> {
 public:
  OutStream(FrameSink& sink, std::string address) : sink_(sink), address_(std::move(address)) {
    sink_.live_streams += 1;
  }
  const std::string& address() const { return address_; }

  void start(pb::Cluster::Stub& stub, pb::Frame hello) {
    self_ = shared_from_this();
    stub.async()->Link(&ctx_, this);
    write(std::move(hello));
    StartRead(&in_);
    AddHold();
    StartCall();
  }
  void cancel() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        std::lock_guard lock(mu_);
        closing_ = true;
        queue_.clear();
      }
      RemoveHold();
      return;
    }
    sink_.on_frame(*this, in_);
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override { write_done(ok); }
  void OnDone(const grpc::Status& status) override {
    sink_.on_done(*this, status);
    sink_.live_streams -= 1;
    self_.reset();  // may destroy this
  }

 private:
  FrameSink& sink_;
  std::string address_;
  grpc::ClientContext ctx_;
  pb::Frame in_;
  std::shared_ptr<OutStream> self_;
};

class InStream final : public Writer<grpc::ServerBidiReactor<pb::Frame, pb::Frame>>,
                       public std::enable_shared_from_this<InStream> {
 public:
  InStream(FrameSink& sink, std::string peer) : sink_(sink), peer_(std::move(peer)) {
    sink_.live_streams += 1;
  }
  // Called right after construction (shared_from_this needs the shared_ptr to exist).
  void start() {
    self_ = shared_from_this();
    StartRead(&in_);
  }
  const std::string& peer() const { return peer_; }
  std::string node;  // set once its Hello was accepted; touched under the node's mutex

  // The first close picks the status: Finish copies status_ without the lock (here, or in
  // OnWriteDone once the last write is done), so a later close must not overwrite it.
  void close(grpc::Status status) {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      status_ = std::move(status);
    }
    if (begin_close()) Finish(status_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      close(grpc::Status::OK);
      return;
    }
    sink_.on_frame(*this, in_);
    if (!closing()) StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    if (write_done(ok)) Finish(status_);
  }
  void OnDone() override {
    sink_.on_done(*this);
    sink_.live_streams -= 1;
    self_.reset();
  }

 private:
  FrameSink& sink_;
  std::string peer_;
  pb::Frame in_;
  grpc::Status status_;
  std::shared_ptr<InStream> self_;
};

}  // namespace meshmq::cluster

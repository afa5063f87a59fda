// The socket type every transport is built on.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace meshmq::net {

// Bound to the concrete io_context executor rather than any_io_executor: 40 bytes less per
// socket and per timer, which counts at a million connections.
using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;

}  // namespace meshmq::net

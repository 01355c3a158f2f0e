// ccproxy-observability: metrics, structured logs, request scopes, access-log storage and
// Pushgateway pushes for C++ proxies. This umbrella header includes every public header.
//
// Example:
//   #include <ccproxy/observability.hpp>
//   ccproxy::observability::PrometheusMetrics metrics("ccproxy");
//   metrics.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200);
#pragma once

#include "ccproxy/observability/circuit_breaker.hpp"
#include "ccproxy/observability/clock.hpp"
#include "ccproxy/observability/context.hpp"
#include "ccproxy/observability/events.hpp"
#include "ccproxy/observability/exposer.hpp"
#include "ccproxy/observability/fields.hpp"
#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/metrics.hpp"
#include "ccproxy/observability/periodic_pusher.hpp"
#include "ccproxy/observability/pushgateway.hpp"
#include "ccproxy/observability/settings.hpp"
#include "ccproxy/observability/storage.hpp"

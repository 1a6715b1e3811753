package main

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyMetrics is the subscriber's own registry: the publish-to-receive
// latency histogram and the samples received.
type latencyMetrics struct {
	reg      *prometheus.Registry
	latency  prometheus.Histogram
	received prometheus.Counter
}

func newLatencyMetrics() *latencyMetrics {
	m := &latencyMetrics{
		reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kaelix_telemetry_receive_latency_seconds",
			Help: "Publish-to-receive latency of each sample: receive time minus the record's CLOCK_MONOTONIC publish timestamp.",
			// 1 µs to about 4 s, doubling.
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 23),
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "kaelix_telemetry_received_total",
			Help: "Samples received."}),
	}
	m.reg.MustRegister(m.latency, m.received)
	return m
}

func (m *latencyMetrics) observe(d time.Duration) { m.latency.Observe(d.Seconds()) }

// serve listens on addr and serves /metrics until stop is called; it
// returns the bound address.
func (m *latencyMetrics) serve(addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kaelix-io/kaelix/bridge/bridgestat"
	"github.com/kaelix-io/kaelix/client"
)

// Bridge runs a configuration's rules over one kaelixd connection and one
// NATS connection. Make it with New, run it with Run (once). Status and
// HTTPAddr may be called from any goroutine.
type Bridge struct {
	cfg   Config
	log   *slog.Logger
	rules []*rule
	ready chan struct{}
	kc    *client.Client
	nc    *nats.Conn

	mu       sync.Mutex // guards lastNATS, httpAddr, and nc for Status (set once by Run)
	lastNATS string
	httpAddr string
}

// rule is one configured rule at run time.
type rule struct {
	cfg     Rule
	invalid error
	m       ruleMetrics
	h       ruleHealth
	b       *Bridge
}

// New checks cfg and returns a Bridge. It fails only if the bridge as a
// whole cannot run (Config.Validate's err); rules that are
// invalid are kept, reported by Status as StateInvalid with the reason,
// and never run. logger nil discards the log.
func New(cfg Config, logger *slog.Logger) (*Bridge, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ruleErrs, err := cfg.Validate()
	if err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	b := &Bridge{cfg: cfg, log: logger, ready: make(chan struct{})}
	for i, rc := range cfg.Rules {
		r := &rule{cfg: rc.withDefaults(cfg.Host), invalid: ruleErrs[i], b: b}
		r.h.state = StateStarting
		if r.invalid != nil {
			r.h.set(StateInvalid, r.invalid)
			logger.Error("rule not run", "rule", r.cfg.Name, "err", r.invalid)
		}
		b.rules = append(b.rules, r)
	}
	return b, nil
}

// Ready is closed once Run has connected to kaelixd, started the NATS
// connection (which may still be trying) and the HTTP listener.
func (b *Bridge) Ready() <-chan struct{} { return b.ready }

// HTTPAddr is the address /metrics, /healthz and /status are served on
// ("" if Config.HTTP is empty or Run has not started the listener).
func (b *Bridge) HTTPAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.httpAddr
}

// Run connects to kaelixd (an error if it is not running) and to NATS
// (in the background if unreachable: rules wait, reconnects back off from
// NATSConfig.ReconnectWait to MaxReconnectWait), runs every valid rule
// until ctx is done, commits their positions and returns nil. A rule that
// fails (its topic does not exist, its stream cannot be made, it was
// evicted) is restarted with backoff from 200ms to 5s; the others go on.
func (b *Bridge) Run(ctx context.Context) error {
	kc, err := client.Connect(ctx, client.Options{SocketPath: b.cfg.Socket, Name: "kaelix-bridge", Logger: b.log})
	if err != nil {
		return fmt.Errorf("kaelix-bridge: kaelixd: %w", err)
	}
	defer kc.Close()
	b.kc = kc
	nc, err := b.connectNATS()
	if err != nil {
		return fmt.Errorf("kaelix-bridge: nats: %w", err)
	}
	defer nc.Close()
	b.mu.Lock()
	b.nc = nc // read by Status under mu; rules start after this
	b.mu.Unlock()
	var srv *http.Server
	if b.cfg.HTTP != "" {
		ln, err := net.Listen("tcp", b.cfg.HTTP)
		if err != nil {
			return fmt.Errorf("kaelix-bridge: http %s: %w", b.cfg.HTTP, err)
		}
		b.mu.Lock()
		b.httpAddr = ln.Addr().String()
		b.mu.Unlock()
		srv = &http.Server{Handler: b.handler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	close(b.ready)
	if b.cfg.StatusFile != "" {
		wctx, stop := context.WithCancel(ctx)
		written := make(chan struct{})
		go func() {
			defer close(written)
			b.writeStatus(wctx)
		}()
		defer func() {
			stop()
			<-written
			b.writeStatusOnce() // the rules' final states
		}()
	}
	var wg sync.WaitGroup
	for _, r := range b.rules {
		if r.invalid != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.supervise(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// connectNATS dials with RetryOnFailedConnect: an unreachable server is
// not an error at start, only a state (Status, health degraded).
func (b *Bridge) connectNATS() (*nats.Conn, error) {
	c := b.cfg.NATS
	base, ceil := time.Duration(c.ReconnectWait), time.Duration(c.MaxReconnectWait)
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(base),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := base << min(attempts, 30)
			if d <= 0 || d > ceil {
				d = ceil
			}
			return d/2 + rand.N(d/2+1) // jitter
		}),
		// No reconnect buffer: while disconnected a publish fails at once,
		// so every record is either sent on a live connection or counted.
		nats.ReconnectBufSize(-1),
		nats.Timeout(time.Duration(c.ConnectTimeout)),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) {
			b.setNATSErr(nil)
			b.log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			b.setNATSErr(fmt.Errorf("disconnected: %v", err))
			b.log.Warn("nats disconnected", "err", err)
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			b.setNATSErr(err)
			if !errors.Is(err, nats.ErrSlowConsumer) {
				b.log.Warn("nats", "err", err)
			}
		}),
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.NKeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("nkey_seed %s: %w", c.NKeySeed, err)
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLS && c.TLSCA == "" && c.TLSCert == "" {
		opts = append(opts, nats.Secure())
	}
	url := c.URLs[0]
	for _, u := range c.URLs[1:] {
		url += "," + u
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	if nc.IsConnected() {
	} else {
		b.setNATSErr(fmt.Errorf("not reachable at %s yet; retrying", url))
		b.log.Warn("nats not reachable at start; retrying", "urls", url)
	}
	return nc, nil
}

// setNATSErr records the last NATS error (nil clears it).
func (b *Bridge) setNATSErr(err error) {
	b.mu.Lock()
	b.lastNATS = ""
	if err != nil {
		b.lastNATS = err.Error()
	}
	b.mu.Unlock()
}

// reconnects is the NATS connection's reconnect count: a generation
// number for "the same connection".
func (b *Bridge) reconnects() uint64 {
	if b.nc == nil {
		return 0
	}
	return b.nc.Stats().Reconnects
}

// waitNATS waits until NATS is connected or ctx is done, with the rule
// in StateWaiting meanwhile.
func (r *rule) waitNATS(ctx context.Context) error {
	if r.b.nc.IsConnected() {
		return nil
	}
	r.h.set(StateWaiting, errors.New("nats not connected"))
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !r.b.nc.IsConnected() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	r.h.set(StateRunning, nil)
	return nil
}

// supervise runs the rule until ctx is done, restarting it with backoff.
func (r *rule) supervise(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for {
		r.h.mu.Lock()
		r.h.starts++
		r.h.mu.Unlock()
		r.h.set(StateStarting, nil)
		start := time.Now()
		var err error
		if r.cfg.Direction == Out {
			err = r.runOut(ctx)
		} else {
			err = r.runIn(ctx)
		}
		if ctx.Err() != nil {
			r.h.set(StateStopped, nil)
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = 200 * time.Millisecond
		}
		r.h.set(StateFailed, err)
		r.b.log.Error("rule failed; restarting", "rule", r.cfg.Name, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			r.h.set(StateStopped, nil)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// writeStatus rewrites Config.StatusFile every bridgestat.Interval until
// ctx is done (Run writes it once more after the rules stopped). A failed
// write is logged once until a write succeeds again.
func (b *Bridge) writeStatus(ctx context.Context) {
	t := time.NewTicker(bridgestat.Interval)
	defer t.Stop()
	failing := false
	for {
		err := b.writeStatusOnce()
		if err != nil && !failing {
			b.log.Error("status file", "path", b.cfg.StatusFile, "err", err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Bridge) writeStatusOnce() error {
	return bridgestat.WriteFile(b.cfg.StatusFile, b.Status(), time.Now())
}

// Status returns the bridge's state and every rule's counters.
func (b *Bridge) Status() Status {
	var s Status
	s.Host = b.cfg.Host
	s.Healthy = true
	b.mu.Lock()
	nc := b.nc
	s.NATS.LastError = b.lastNATS
	b.mu.Unlock()
	if nc != nil {
		s.NATS.Connected = nc.IsConnected()
		s.NATS.URL = nc.ConnectedUrlRedacted()
		s.NATS.Reconnects = nc.Stats().Reconnects
	}
	if !s.NATS.Connected {
		s.Healthy = false
	}
	for _, r := range b.rules {
		rs := RuleStatus{Name: r.cfg.Name, Direction: r.cfg.Direction, Topic: r.cfg.Topic, Subject: r.cfg.Subject, Mode: r.cfg.Mode, Lost: map[string]uint64{}}
		r.h.mu.Lock()
		rs.State, rs.Error, rs.Starts = r.h.state, r.h.err, r.h.starts
		r.h.mu.Unlock()
		rs.Forwarded, rs.Acked, rs.Redelivered = r.m.forwarded.Load(), r.m.acked.Load(), r.m.redelivered.Load()
		rs.Duplicates, rs.Skipped, rs.Dropped = r.m.duplicates.Load(), r.m.skipped.Load(), r.m.dropped.Load()
		for i, reason := range lossReasons {
			if n := r.m.lost[i].Load(); n > 0 {
				rs.Lost[reason] = n
				rs.LostTotal += n
			}
		}
		rs.LagBytes, rs.LagRecords = r.m.lagBytes.Load(), r.m.lagRecords.Load()
		rs.Reconnects = s.NATS.Reconnects
		if rs.State != StateRunning {
			s.Healthy = false
		}
		s.Rules = append(s.Rules, rs)
	}
	return s
}

// handler serves /metrics (Prometheus), /healthz (200 healthy, 503
// degraded, with the Status as JSON) and /status (the Status as JSON).
func (b *Bridge) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{b})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(b.Status())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		s := b.Status()
		w.Header().Set("Content-Type", "application/json")
		if !s.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(s)
	})
	return mux
}

var (
	descCounter = func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("kaelix_bridge_"+name, help, []string{"rule", "direction", "mode"}, nil)
	}
	descForwarded   = descCounter("forwarded_total", "Records forwarded: out, published to NATS; in, written to the local ring.")
	descAcked       = descCounter("acked_total", "JetStream: out, records acknowledged by the stream (each counted once); in, messages whose stream position was committed.")
	descRedelivered = descCounter("redelivered_total", "Out: records republished after a failed or unconfirmed publish.")
	descDuplicates  = descCounter("duplicates_total", "Inbound records already written, dropped.")
	descSkipped     = descCounter("skipped_total", "Out: bridged-in records not sent back; in: records of this host.")
	descLag         = descCounter("lag_records", "Out: published and not yet acknowledged; in (jetstream): stream messages not read yet.")
	descLagBytes    = descCounter("lag_bytes", "Out: local ring bytes not yet read.")
	descUp          = descCounter("rule_up", "1 while the rule runs and NATS is connected.")
	descLost        = prometheus.NewDesc("kaelix_bridge_lost_total", "Records lost, by reason.", []string{"rule", "direction", "mode", "reason"}, nil)
	descReconnects  = prometheus.NewDesc("kaelix_bridge_nats_reconnects_total", "NATS reconnects.", nil, nil)
	descConnected   = prometheus.NewDesc("kaelix_bridge_nats_connected", "1 while NATS is connected.", nil, nil)
)

type collector struct{ b *Bridge }

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Status()
	ch <- prometheus.MustNewConstMetric(descReconnects, prometheus.CounterValue, float64(s.NATS.Reconnects))
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, b2f(s.NATS.Connected))
	for _, r := range s.Rules {
		l := []string{r.Name, r.Direction, r.Mode}
		ch <- prometheus.MustNewConstMetric(descForwarded, prometheus.CounterValue, float64(r.Forwarded), l...)
		ch <- prometheus.MustNewConstMetric(descAcked, prometheus.CounterValue, float64(r.Acked), l...)
		ch <- prometheus.MustNewConstMetric(descRedelivered, prometheus.CounterValue, float64(r.Redelivered), l...)
		ch <- prometheus.MustNewConstMetric(descDuplicates, prometheus.CounterValue, float64(r.Duplicates), l...)
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(r.Skipped), l...)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(r.LagRecords), l...)
		ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, float64(r.LagBytes), l...)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b2f(r.State == StateRunning && s.NATS.Connected), l...)
		for _, reason := range lossReasons {
			ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(r.Lost[reason]), append(l, reason)...)
		}
	}
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

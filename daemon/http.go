package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kaelix-io/kaelix/wire"
)

// The HTTP front end: GET /healthz (Health as JSON; 200 when healthy or
// degraded, 503 when unhealthy or unknown) and GET /metrics (the
// Prometheus exposition; 404 while telemetry.enabled or
// telemetry.metrics.prometheus.enabled is false). Both are thin views of
// the typed snapshots Health and the metrics collector return. The
// listener is network.host:network.port (default loopback), at most
// network.max_connections connections at once, with TLS from
// [security.tls] when enabled. None of it is live: changing it needs a
// restart.

// startHTTP listens and serves until stop. With network.enabled false it
// does nothing.
func (d *Daemon) startHTTP() (stop func(), err error) {
	cfg := d.cfg.Config
	if !cfg.Network.Enabled {
		return func() {}, nil
	}
	var tlsCfg *tls.Config
	if cfg.Security.TLS.Enabled {
		cert, err := tls.LoadX509KeyPair(cfg.Security.TLS.CertPath, cfg.Security.TLS.KeyPath)
		if err != nil {
			return nil, &OpError{Op: "load TLS key pair (security.tls)", Path: cfg.Security.TLS.CertPath, Err: err}
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	metricsH := promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{Registry: d.m.reg})
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := d.cur.Load().cfg.Telemetry
		if !t.Enabled || !t.Metrics.Prometheus.Enabled {
			http.Error(w, "metrics disabled (telemetry.enabled, telemetry.metrics.prometheus.enabled)", http.StatusNotFound)
			return
		}
		metricsH.ServeHTTP(w, r)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.serveHealth)
	var servers []*http.Server
	serve := func(addr string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", &OpError{Op: "listen", Path: addr, Err: err}
		}
		ln = &limitListener{Listener: ln, sem: make(chan struct{}, cfg.Network.MaxConnections)}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug), TLSConfig: tlsCfg}
		servers = append(servers, srv)
		go func() {
			var err error
			if tlsCfg != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("http listener", "addr", ln.Addr().String(), "err", err)
			}
		}()
		return ln.Addr().String(), nil
	}
	shutdown := func() {
		for _, s := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if s.Shutdown(ctx) != nil {
				s.Close()
			}
			cancel()
		}
	}
	if p := cfg.Telemetry.Metrics.Prometheus.Port; p != 0 {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", metrics)
		if d.metricsAddr, err = serve(net.JoinHostPort(cfg.Network.Host, strconv.Itoa(p)), mm); err != nil {
			return nil, err
		}
	} else {
		mux.Handle("GET /metrics", metrics)
	}
	if d.httpAddr, err = serve(cfg.HTTPAddr(), mux); err != nil {
		shutdown()
		return nil, err
	}
	if d.metricsAddr == "" {
		d.metricsAddr = d.httpAddr
	}
	return shutdown, nil
}

func (d *Daemon) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := d.Health()
	w.Header().Set("Content-Type", "application/json")
	if h.Status == wire.HealthUnhealthy || h.Status == wire.HealthUnknown {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(h)
}

// limitListener accepts at most cap(sem) connections at once; further
// ones wait in the kernel's backlog.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

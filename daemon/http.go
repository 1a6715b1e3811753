package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
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

// bindHTTP binds the HTTP listeners (network.host:network.port, and the
// separate metrics port if telemetry.metrics.prometheus.port is set)
// without serving yet: Run binds them early, so that a busy port fails
// the start at once, before any topic is created. serve starts serving;
// stop shuts the servers down (or closes the listeners if serve was never
// called). With network.enabled false both do nothing.
//
// A listener that cannot be bound is fatal, not a degraded start: an
// operator who left the listener on relies on /healthz and /metrics, and
// a daemon up without them fails its probes with nothing said. The error
// names the key and the two ways out (another port, or none).
func (d *Daemon) bindHTTP() (serve, stop func(), err error) {
	cfg := d.cfg.Config
	if !cfg.Network.Enabled {
		return func() {}, func() {}, nil
	}
	var tlsCfg *tls.Config
	if cfg.Security.TLS.Enabled {
		cert, err := tls.LoadX509KeyPair(cfg.Security.TLS.CertPath, cfg.Security.TLS.KeyPath)
		if err != nil {
			return nil, nil, &OpError{Op: "load TLS key pair (security.tls)", Path: cfg.Security.TLS.CertPath, Err: err}
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
	type bound struct {
		ln  net.Listener
		srv *http.Server
	}
	var all []bound
	closeAll := func() {
		for _, b := range all {
			b.ln.Close()
		}
	}
	bind := func(key, flag, addr string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", &OpError{Op: "listen for HTTP (" + key + ")", Path: addr,
				Err: fmt.Errorf("%w; %s or turn HTTP off (--set network.enabled=false)", sysErr(err), listenAdvice(err, flag))}
		}
		ln = &limitListener{Listener: ln, sem: make(chan struct{}, cfg.Network.MaxConnections)}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug), TLSConfig: tlsCfg}
		all = append(all, bound{ln, srv})
		return ln.Addr().String(), nil
	}
	if p := cfg.Telemetry.Metrics.Prometheus.Port; p != 0 {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", metrics)
		if d.metricsAddr, err = bind("telemetry.metrics.prometheus.port", "--set telemetry.metrics.prometheus.port=N",
			net.JoinHostPort(cfg.Network.Host, strconv.Itoa(p)), mm); err != nil {
			return nil, nil, err
		}
	} else {
		mux.Handle("GET /metrics", metrics)
	}
	if d.httpAddr, err = bind("network.host:network.port", "--http-port N", cfg.HTTPAddr(), mux); err != nil {
		closeAll()
		return nil, nil, err
	}
	if d.metricsAddr == "" {
		d.metricsAddr = d.httpAddr
	}
	var served atomic.Bool
	serve = func() {
		served.Store(true)
		for _, b := range all {
			go func() {
				var err error
				if tlsCfg != nil {
					err = b.srv.ServeTLS(b.ln, "", "")
				} else {
					err = b.srv.Serve(b.ln)
				}
				if err != nil && !errors.Is(err, http.ErrServerClosed) {
					d.log.Error("http listener", "addr", b.ln.Addr().String(), "err", err)
				}
			}()
		}
	}
	stop = func() {
		if !served.Load() {
			closeAll()
			return
		}
		for _, b := range all {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if b.srv.Shutdown(ctx) != nil {
				b.srv.Close()
			}
			cancel()
		}
	}
	return serve, stop, nil
}

// sysErr is err's innermost system call error ("address already in use"),
// or err.
// listenAdvice is the remedy for a failed TCP listen that fits its cause:
// a port in use or reserved, or a host that is no address of this host.
// portFlag is how to give another port.
func listenAdvice(err error, portFlag string) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "the port is in use: choose another port (" + portFlag + ", 0 picks a free one)"
	case errors.Is(err, syscall.EACCES):
		return "ports below 1024 need CAP_NET_BIND_SERVICE: choose another port (" + portFlag + ", 0 picks a free one)"
	}
	return "check the host (--http-host, network.host: a name or address of this host, e.g. 127.0.0.1 or 0.0.0.0)"
}

func sysErr(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
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

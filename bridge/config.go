package bridge

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/wire"
)

// Config is a bridge's configuration: where kaelixd and NATS are, and the
// rules. Start from Default(); the zero value is not valid. Load reads it
// from TOML (the keys are the toml tags; unknown keys are errors).
type Config struct {
	// Host names this host on the NATS side ({host} in subjects,
	// the Kaelix-Rec header, the dedup key). Default: the hostname up to its first
	// dot. Letters, digits, '-' and '_' only.
	Host string `toml:"host"`
	// Socket is kaelixd's control socket ("" is client's default).
	Socket string `toml:"socket"`
	// StateDir holds the committed positions, one small file per rule
	// (RULE.state, replaced atomically). Required by jetstream rules.
	StateDir string `toml:"state_dir"`
	// HTTP, if set, is where /metrics, /healthz and /status are served
	// (host:port; port 0 picks one, see Bridge.HTTPAddr).
	HTTP string `toml:"http"`
	// StatusFile, if set, is rewritten every second with the bridge's
	// Status (bridgestat.File, replaced by rename), for readers that
	// should not speak HTTP: kaelixd passes STATE_DIR/bridges/NAME.status
	// (bridgestat.StatusPath) to the bridges it runs, and kaelixctl bridge
	// reads it there.
	StatusFile string `toml:"status_file"`
	// CommitInterval is how often committed positions are written to
	// StateDir (a SIGKILL replays at most this much, deduplicated).
	CommitInterval Duration `toml:"commit_interval"`

	NATS  NATSConfig `toml:"nats"`
	Rules []Rule     `toml:"rules"`
}

// NATSConfig is the one NATS connection the bridge's rules share; every
// field is passed to nats.go.
type NATSConfig struct {
	URLs []string `toml:"urls"` // server URLs, tried in turn (nats://, tls://)
	Name string   `toml:"name"` // connection name the server shows
	// Creds is a credentials file (JWT and nkey seed); NKeySeed a file
	// with an nkey seed. At most one of them. User/Password as in URLs.
	Creds    string `toml:"creds"`
	NKeySeed string `toml:"nkey_seed"`
	User     string `toml:"user"`
	Password string `toml:"password"`
	Token    string `toml:"token"`
	// TLS: TLSCA verifies the server (PEM file), TLSCert and TLSKey are
	// the client certificate (both or neither); TLS turns TLS on with the
	// system roots when none of those is given.
	TLS     bool   `toml:"tls"`
	TLSCA   string `toml:"tls_ca"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// Reconnects: the wait starts at ReconnectWait and doubles up to
	// MaxReconnectWait (bounded backoff, with jitter); never gives up.
	ReconnectWait    Duration `toml:"reconnect_wait"`
	MaxReconnectWait Duration `toml:"max_reconnect_wait"`
	ConnectTimeout   Duration `toml:"connect_timeout"`
	// AckTimeout bounds the wait for a JetStream publish acknowledgement.
	AckTimeout Duration `toml:"ack_timeout"`
}

// Direction of a rule.
const (
	Out = "out" // local topic -> NATS subject
	In  = "in"  // NATS subject -> local topic
)

// Mode of a rule.
const (
	Core      = "core"      // core NATS: at-most-once, losses counted
	JetStream = "jetstream" // JetStream: at-least-once, deduplicated, resumable
)

// Rule is one direction of one topic.
type Rule struct {
	// Name identifies the rule in metrics, status and its state file.
	// Default DIRECTION-TOPIC.
	Name      string `toml:"name"`
	Direction string `toml:"direction"` // "out" or "in"
	Topic     string `toml:"topic"`     // the local topic; must exist
	// Subject: outbound, the subject each record is published on, with
	// {host}, {topic} and {partition} replaced (default
	// kaelix.{host}.{topic}.{partition}); inbound, the subject (wildcards
	// allowed) to receive from (default kaelix.*.{topic}.*, every host).
	Subject string `toml:"subject"`
	Mode    string `toml:"mode"` // "core" (default) or "jetstream"
	// Stream (jetstream) is the stream's name; it is created, on the
	// rule's subjects with file storage and a Duplicates window of
	// DedupWindow, if it does not exist. Default KAELIX_<TOPIC>, with
	// '.' as '_'.
	Stream      string   `toml:"stream"`
	DedupWindow Duration `toml:"dedup_window"` // default 2m
	// Replicas of the stream when the bridge creates it (a NATS cluster
	// with JetStream on at least that many servers). Default 1.
	Replicas int `toml:"replicas"`
	// From (outbound) is where a rule with no committed position starts:
	// "latest" (default, records published from now on) or "oldest"
	// (what the ring still holds).
	From string `toml:"from"`
	// Window (outbound jetstream) bounds the records published and not yet
	// acknowledged; inbound jetstream, the messages read ahead and the
	// batch whose position is committed at once. Default 512.
	Window int `toml:"window"`
	// Wait is how the rule waits on the local ring: outbound, its
	// subscriber for the next record; inbound, its publisher while the
	// ring is full. "blocking" (default: sleeps on the ring's futex at
	// once, which on a machine with more runnable threads than cores
	// had the lowest latency: a spinning bridge takes the CPU from the
	// processes it waits for), "backoff", "yield" or "busy-spin" (see
	// client.WaitStrategy).
	Wait string `toml:"wait"`
}

// waitStrategies maps Rule.Wait to the client's strategies.
var waitStrategies = map[string]client.WaitStrategy{
	"blocking": client.WaitBlocking, "backoff": client.WaitBackoff,
	"yield": client.WaitYield, "busy-spin": client.WaitBusySpin,
}

// Duration is a time.Duration written as a Go duration string in TOML.
type Duration time.Duration

// UnmarshalText parses "250ms", "5s", ...
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText is the inverse of UnmarshalText.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Default returns the defaults: this host's short name, the default
// socket, nats://127.0.0.1:4222, reconnects from 100ms up to 5s, no rules.
func Default() Config {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	return Config{
		Host:           sanitizeHost(host),
		CommitInterval: Duration(100 * time.Millisecond),
		NATS: NATSConfig{
			URLs:             []string{"nats://127.0.0.1:4222"},
			Name:             "kaelix-bridge",
			ReconnectWait:    Duration(100 * time.Millisecond),
			MaxReconnectWait: Duration(5 * time.Second),
			ConnectTimeout:   Duration(2 * time.Second),
			AckTimeout:       Duration(5 * time.Second),
		},
	}
}

func sanitizeHost(h string) string {
	b := []byte(h)
	for i, c := range b {
		if !validHostByte(c) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "localhost"
	}
	return string(b)
}

func validHostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Load reads a TOML file over Default(). It returns every decoding error
// and unknown key at once; it does not Validate.
func Load(path string) (Config, error) {
	cfg := Default()
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return cfg, fmt.Errorf("bridge config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("bridge config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// withDefaults returns r with its defaults filled in.
func (r Rule) withDefaults(host string) Rule {
	if r.Mode == "" {
		r.Mode = Core
	}
	if r.Name == "" {
		r.Name = r.Direction + "-" + r.Topic
	}
	if r.Subject == "" {
		if r.Direction == In {
			r.Subject = "kaelix.*.{topic}.*"
		} else {
			r.Subject = "kaelix.{host}.{topic}.{partition}"
		}
	}
	if r.Stream == "" {
		r.Stream = "KAELIX_" + strings.ToUpper(strings.ReplaceAll(r.Topic, ".", "_"))
	}
	if r.DedupWindow == 0 {
		r.DedupWindow = Duration(2 * time.Minute)
	}
	if r.From == "" {
		r.From = "latest"
	}
	if r.Replicas <= 0 {
		r.Replicas = 1
	}
	if r.Window <= 0 {
		r.Window = 512
	}
	if r.Wait == "" {
		r.Wait = "blocking"
	}
	return r
}

// Validate checks the configuration. ruleErrs has one entry per rule,
// nil for a valid rule; err is about the bridge as a whole (nil if it can
// run), every problem joined. A bridge runs the valid rules and reports the
// others (Status) so that one bad rule does not stop the rest.
func (c Config) Validate() (ruleErrs []error, err error) {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("host: empty"))
	}
	for i := 0; i < len(c.Host); i++ {
		if !validHostByte(c.Host[i]) {
			errs = append(errs, fmt.Errorf("host %q: byte %#02x is not a letter, digit, '-' or '_' (it is a NATS subject token)", c.Host, c.Host[i]))
			break
		}
	}
	if len(c.NATS.URLs) == 0 {
		errs = append(errs, errors.New("nats.urls: empty"))
	}
	for _, u := range c.NATS.URLs {
		if pu, err := url.Parse(u); err != nil || pu.Host == "" {
			errs = append(errs, fmt.Errorf("nats.urls: %q is not a URL like nats://HOST:PORT", u))
		}
	}
	if c.NATS.Creds != "" && c.NATS.NKeySeed != "" {
		errs = append(errs, errors.New("nats: creds and nkey_seed are exclusive"))
	}
	if (c.NATS.TLSCert == "") != (c.NATS.TLSKey == "") {
		errs = append(errs, errors.New("nats: tls_cert and tls_key go together"))
	}
	if c.NATS.ReconnectWait <= 0 || c.NATS.MaxReconnectWait < c.NATS.ReconnectWait {
		errs = append(errs, errors.New("nats: need 0 < reconnect_wait <= max_reconnect_wait"))
	}
	if c.CommitInterval <= 0 {
		errs = append(errs, errors.New("commit_interval: must be positive"))
	}
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New("rules: none"))
	}
	names := map[string]int{}
	ruleErrs = make([]error, len(c.Rules))
	for i, r := range c.Rules {
		r = r.withDefaults(c.Host)
		var re []error
		if j, dup := names[r.Name]; dup {
			re = append(re, fmt.Errorf("name %q: already used by rule %d", r.Name, j))
		}
		names[r.Name] = i
		if strings.ContainsAny(r.Name, "/\x00") || strings.HasPrefix(r.Name, ".") {
			re = append(re, fmt.Errorf("name %q: not a file name", r.Name))
		}
		if r.Direction != Out && r.Direction != In {
			re = append(re, fmt.Errorf("direction %q: want out or in", r.Direction))
		}
		if err := wire.ValidateTopicName(r.Topic); err != nil {
			re = append(re, fmt.Errorf("topic: %w", err))
		}
		if r.Mode != Core && r.Mode != JetStream {
			re = append(re, fmt.Errorf("mode %q: want core or jetstream", r.Mode))
		}
		if r.Mode == JetStream && c.StateDir == "" {
			re = append(re, errors.New("mode jetstream: state_dir must be set (committed positions live there)"))
		}
		if _, ok := waitStrategies[r.Wait]; !ok {
			re = append(re, fmt.Errorf("wait %q: want blocking, backoff, yield or busy-spin", r.Wait))
		}
		if r.From != "latest" && r.From != "oldest" {
			re = append(re, fmt.Errorf("from %q: want latest or oldest", r.From))
		}
		if err := checkSubject(r.Subject, r.Direction == In); err != nil {
			re = append(re, fmt.Errorf("subject %q: %w", r.Subject, err))
		}
		if r.Mode == JetStream && (r.Stream == "" || strings.ContainsAny(r.Stream, ".*> \t")) {
			re = append(re, fmt.Errorf("stream %q: a JetStream name has no '.', '*', '>' or spaces", r.Stream))
		}
		if len(re) > 0 {
			ruleErrs[i] = fmt.Errorf("rule %d (%s): %w", i, r.Name, errors.Join(re...))
		}
	}
	return ruleErrs, errors.Join(errs...)
}

// checkSubject validates a subject template: {host}, {topic} and
// {partition} stand for tokens; wildcards only where allowed.
func checkSubject(tmpl string, wildcards bool) error {
	s := strings.NewReplacer("{host}", "h", "{topic}", "t", "{partition}", "0").Replace(tmpl)
	if s == "" {
		return errors.New("empty")
	}
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		if tok == "" {
			return errors.New("empty token (a '.' at either end or two in a row)")
		}
		if strings.ContainsAny(tok, " \t\r\n{}") {
			return fmt.Errorf("token %q: spaces and unknown {placeholders} are not allowed", tok)
		}
		if strings.ContainsAny(tok, "*>") {
			if !wildcards {
				return errors.New("wildcards ('*', '>') are for inbound rules only")
			}
			if tok != "*" && tok != ">" || tok == ">" && i != len(toks)-1 {
				return fmt.Errorf("token %q: a wildcard is a whole token, '>' only the last", tok)
			}
		}
	}
	return nil
}

// subjectFor expands an outbound rule's subject template.
func subjectFor(tmpl, host, topic string, partition int) string {
	return strings.NewReplacer("{host}", host, "{topic}", topic, "{partition}", itoa(partition)).Replace(tmpl)
}

// Package daemon is kaelixd, Kaelix's broker: it owns the topic registry,
// makes each partition's shared-memory region and ring, hands their
// descriptors to clients over a Unix domain socket, and watches every client
// process so that its death never blocks the others.
//
// # Model
//
// A topic has N partitions; each partition is one ringbuf ring in shm
// regions (ringbuf.Create): a data region (ring header, tail, publisher
// table, records), written only by publishers, a consumer region
// (doorbells), and one slot region per subscriber slot and per queue-group
// slot (a cursor and its counters). Publishers get read-write descriptors
// of all of them; a subscriber gets the data region through a descriptor
// opened O_RDONLY, which the kernel lets it map PROT_READ only, the
// consumer region and its own slot (and its group's) read-write, and no
// other slot. The daemon maps them all read-write. It is on the control path only: publishers and subscribers
// write and read the rings directly, so they keep working while the daemon
// restarts. The protocol is described in package wire.
//
// # Leases and liveness
//
// A client's control connection is its lease. Each peer is identified with
// SO_PEERCRED and its pid watched through a pidfd in one epoll set. When the
// process exits, the watcher goroutine wakes at once, ReapDead runs on every
// ring the client attached (freeing its subscriber slots, so a block-mode
// publisher is no longer held back, and resolving claims it left
// half-written), and its registrations are dropped. A connection closed by
// a live process only drops its registrations. A periodic sweep
// (Config.SweepInterval) reaps every ring as a backstop.
//
// Which subscriber and queue-group slot a subscriber gets, who is kept out
// of a free slot (a live process that was handed its descriptor), which
// reservation a cancel may free and whose slots a death releases or an
// eviction takes are decided by one slot ledger per partition (ledger.go),
// by the daemon's own record of the reservations it made; the ring only
// performs the one-slot atomic step it is told.
//
// Topics are created outside the registry lock behind a placeholder
// (creating.go): list, info, status and attaches of other topics answer
// while a big topic's regions are made; an attach of the topic being made
// waits for it.
//
// # Persistence
//
// The registry is saved atomically to StateDir/topics.json after each
// change. A daemon that starts finds it, re-opens each partition's two
// regions, re-attaches its ring and serves the topics again (topics of a
// version 1 registry, whose rings were whole in one region, are not
// adopted: re-create them); region files nobody registered and
// nobody maps are removed (files that are not regions never are). A
// registry that is missing or cannot be read is rebuilt from the region
// headers, with nothing removed and health degraded (a missing one with no
// region in the region directory is a first start), or if a region fits no
// topic the daemon refuses to start naming it (rebuild.go). One daemon per state
// dir, per region directory and per control socket path: Run binds an
// abstract Unix socket named after each path, which the kernel releases
// when the process dies and nobody can delete (lock_linux.go). It also
// flocks StateDir/kaelixd.lock (as earlier versions did, so they and this
// one never run side by side) and writes its pid there, but a deleted
// lock file lets no second daemon in. An existing socket file is removed
// only if nothing answers on it.
//
// # Shutdown
//
// When Run's context ends, the daemon closes the socket and every
// connection, removes the socket file and unmaps its regions. By default
// the region files and registry stay, so the next daemon re-adopts them and
// clients still attached keep their mappings. With Config.RemoveOnExit
// (kaelixd --ephemeral) the regions, registry and heartbeat are removed
// too, leaving nothing in /dev/shm.
//
// # Files
//
//	StateDir/kaelixd.lock   flock (for earlier versions); holder's pid (text)
//	StateDir/topics.json    the registry (see stateFile)
//	StateDir/heartbeat      pid, counter, unix ns (see stat.ReadHeartbeat)
//	SocketPath              the control socket (default beside them)
//	TmpfsRoot/DirName/T.pN    data region of partition N of topic T (or hugetlbfs)
//	TmpfsRoot/DirName/T.pN.c  its consumer region
//
// # Configuration and reload
//
// Config embeds config.Config (the TOML sections; see package daemon/config
// and configs/kaelixd.example.toml). Reload (also SIGHUP through
// HandleSignals, the config reload request, and file changes with
// Config.WatchFile) re-reads the file through Config.Loader, validates it,
// diffs it against the configuration in effect and applies it all or nothing;
// keys that cannot change live refuse the whole reload by name. See the
// protocol at the top of reload.go. OnConfigChange subscribes to changes;
// Config and ConfigView return what is in effect.
//
// # Health and metrics
//
// Health evaluates the rules listed in health.go (worst status wins);
// GET /healthz serves it as JSON (200 healthy or degraded, 503 unhealthy or
// unknown). GET /metrics is the Prometheus exposition from a per-daemon
// registry; ring counters are read from shared memory at scrape time by a
// custom collector (metrics.go). Both are served on network.host:port
// (127.0.0.1, a free port for an embedded Default, 9090 for kaelixd), with
// TLS from [security.tls].
//
// # Robustness
//
// Nothing a client sends can crash the daemon: frames are bounded and
// checked before their body is read, bodies are decoded into plain structs,
// and each connection runs under a recover that logs the panic and drops
// only that client (kaelix_clients_dropped_total{reason}). Nothing a client
// does to shared memory can crash it either: the daemon touches ring memory
// only inside shm.Guard, and every sweep re-validates each partition's
// regions (file sizes, region headers, ring headers); a damaged partition is taken out of
// service (attaches refused with the reason, kaelix_region_faults_total,
// health rule region_fault) and every other topic carries on.
//
// # Subscribers that hold publishers back
//
// With daemon.evict_stalled_after (default 5s, after Aeron's untethered
// window limit timeout; 0s never evicts), a subscriber whose ring slot stays at
// least half a block or reject ring behind the tail without advancing
// that long — its process stopped (SIGSTOP, a debugger) or running but
// not reading — is evicted: its slots are taken from it
// (ringbuf.Ring.EvictSubscriber), the publishers go on at once, and the
// process, which lives on, gets ringbuf.ErrEvicted (client.ErrEvicted)
// from its next read and may subscribe again. A process that holds
// publishers back that long again after an eviction is killed through its
// pidfd. Counted in kaelix_subscriber_evictions_total{action},
// Status.SubscriberEvictions and SubscriberKills, and per partition in
// kaelix_partition_evicted_total. See evict.go.
//
// # Resources
//
// Creations refused for lack of shared memory, huge pages or lockable
// memory, and connections refused by daemon.max_clients, are counted in
// kaelix_resource_refusals_total{resource}. A connection that sends no
// hello within Config.HelloTimeout (5 s) is closed (logged at debug), so
// connections that never speak do not hold max_clients places.
package daemon

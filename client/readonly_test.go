package client_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
)

// mapping is one line of /proc/self/maps.
type mapping struct {
	start, end uintptr
	perms      string
}

// mappingsOf returns this process's mappings of the file at path.
func mappingsOf(t *testing.T, path string) []mapping {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != path {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("maps line %q", sc.Text())
		}
		out = append(out, mapping{uintptr(start), uintptr(end), fields[1]})
	}
	return out
}

// added returns the mappings in after that are not in before.
func added(before, after []mapping) []mapping {
	var out []mapping
	for _, m := range after {
		found := false
		for _, b := range before {
			found = found || b == m
		}
		if !found {
			out = append(out, m)
		}
	}
	return out
}

// TestSubscriberDataReadOnly: a Subscriber maps each partition's data
// region read-only and its consumer region read-write (the kernel's view,
// /proc/self/maps); the data mapping cannot be made writable (mprotect:
// EACCES, since the descriptor was opened O_RDONLY); a handler writing
// into a received Payload gets a *FaultError with ReadOnly set, and the
// record stays intact for every other reader. Publishers map both
// read-write.
func TestSubscriberDataReadOnly(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	info, err := c.CreateTopic(ctx, client.TopicConfig{Name: "ro.data", CapacityBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	dataPath, consPath := info.Partitions[0].Path, info.Partitions[0].ConsumerPath
	// The daemon (in this process) maps both regions read-write.
	data0, cons0 := mappingsOf(t, dataPath), mappingsOf(t, consPath)
	if len(data0) == 0 || len(cons0) == 0 {
		t.Fatalf("daemon's mappings of %s, %s not found", dataPath, consPath)
	}

	pub, err := c.NewPublisher(ctx, "ro.data", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pd, pc := added(data0, mappingsOf(t, dataPath)), added(cons0, mappingsOf(t, consPath))
	if len(pd) != 1 || pd[0].perms != "rw-s" || len(pc) != 1 || pc[0].perms != "rw-s" {
		t.Fatalf("publisher's mappings: data %+v, consumer %+v; want one rw-s each", pd, pc)
	}
	data1, cons1 := mappingsOf(t, dataPath), mappingsOf(t, consPath)

	sub, err := c.Subscribe(ctx, "ro.data", client.SubscribeOptions{From: client.FromOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sd, scm := added(data1, mappingsOf(t, dataPath)), added(cons1, mappingsOf(t, consPath))
	if len(sd) != 1 || sd[0].perms != "r--s" {
		t.Fatalf("subscriber's data mapping: %+v, want one r--s", sd)
	}
	if len(scm) != 1 || scm[0].perms != "rw-s" {
		t.Fatalf("subscriber's consumer mapping: %+v, want one rw-s", scm)
	}
	m := sd[0]
	if _, _, errno := unix.Syscall(unix.SYS_MPROTECT, m.start, m.end-m.start, unix.PROT_READ|unix.PROT_WRITE); errno != unix.EACCES {
		t.Fatalf("mprotect of the subscriber's data mapping to PROT_WRITE: %v, want EACCES", errno)
	}

	if err := pub.TryPublish(client.Message{Payload: []byte("intact")}); err != nil {
		t.Fatal(err)
	}
	n, err := sub.Poll(func(m *client.Message) { m.Payload[0] = 'X' }, 1)
	var fe *client.FaultError
	if !errors.As(err, &fe) || !errors.Is(err, client.ErrFault) || !fe.ReadOnly {
		t.Fatalf("handler writing into the Payload: Poll = (%d, %v), want a read-only *client.FaultError", n, err)
	}
	if fe.Addr < m.start || fe.Addr >= m.end {
		t.Errorf("fault at %#x, outside the data mapping %#x-%#x", fe.Addr, m.start, m.end)
	}
	t.Logf("write into a Payload: %v", err)

	other, err := c.Subscribe(ctx, "ro.data", client.SubscribeOptions{From: client.FromOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := other.Receive(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != "intact" {
		t.Fatalf("record after the write attempt: %q, want %q", got.Payload, "intact")
	}
}

// TestConsumerRegionTruncated: the fault guard covers the consumer
// region too. A process with a writable descriptor of it (any publisher
// or subscriber) truncates it; the subscriber's next Poll, which stores
// its cursor there, returns a *FaultError (not a read-only write) instead
// of crashing.
func TestConsumerRegionTruncated(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	info, err := c.CreateTopic(ctx, client.TopicConfig{Name: "trunc.cons", CapacityBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "trunc.cons", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := c.NewPublisher(ctx, "trunc.cons", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.TryPublish(client.Message{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(info.Partitions[0].ConsumerPath, 0); err != nil {
		t.Fatal(err)
	}
	n, err := sub.Poll(func(*client.Message) {}, 1)
	var fe *client.FaultError
	if !errors.As(err, &fe) || !errors.Is(err, client.ErrFault) || fe.ReadOnly {
		t.Fatalf("Poll after the consumer region was truncated: (%d, %v), want a *client.FaultError", n, err)
	}
	t.Logf("Poll: %v", err)
}

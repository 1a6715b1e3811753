package wire

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the frame decoder and every body
// decoder: none may panic, and a frame that decodes must re-encode to the
// same bytes.
func FuzzDecode(f *testing.F) {
	seed := func(t Type, body any) {
		fr, err := NewFrame(t, 1, body)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := AppendFrame(nil, fr)
		f.Add(b)
	}
	seed(TypeHello, Hello{Version: Version, Name: "seed"})
	seed(TypeCreate, TopicSpec{Name: "a.b", Partitions: 2})
	seed(TypeAttach, Attach{Topic: "a", Role: RolePublisher})
	seed(TypeAttach.Reply(), AttachReply{AttachmentID: 2, Partitions: []int{0}, Topic: TopicInfo{Spec: TopicSpec{Name: "a"},
		Partitions: []PartitionInfo{{Region: "a.p0", Path: "/dev/shm/kaelix/a.p0", ConsumerRegion: "a.p0.c", ConsumerPath: "/dev/shm/kaelix/a.p0.c"}}}})
	seed(TypeError, Error{Code: CodeNotFound, Message: "x"})
	seed(TypeConfigShow, Empty{})
	seed(TypeConfigReload.Reply(), ConfigReload{AtNS: 1, Changes: []ConfigChange{{Key: "telemetry.logging.level", Old: "info", New: "debug"}}})
	seed(TypeHealth.Reply(), Health{Status: HealthDegraded, Reasons: []HealthReason{{Rule: "reload", Status: HealthDegraded, Message: "x"}}})
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(data) > 0 {
			fr, n, err := Decode(data)
			if err != nil {
				return
			}
			if n < HeaderBytes || n > len(data) {
				t.Fatalf("consumed %d of %d", n, len(data))
			}
			again, err := AppendFrame(nil, fr)
			if err != nil || !bytes.Equal(again, data[:n]) {
				t.Fatalf("re-encode mismatch: %v", err)
			}
			for _, v := range []any{&Hello{}, &TopicSpec{}, &Delete{}, &TopicRef{}, &Attach{}, &Detach{}, &AttachReply{}, &TopicList{}, &Status{}, &Stats{}, &Error{}, &ConfigView{}, &ConfigReload{}, &Health{}} {
				_ = DecodeBody(fr, v)
			}
			if sp := (TopicSpec{}); DecodeBody(fr, &sp) == nil {
				_ = ValidateTopicName(sp.Name)
				_ = sp.Normalize()
			}
			_ = ReplyError(fr)
			_ = fr.Type.String()
			data = data[n:]
		}
	})
}

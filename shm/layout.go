package shm

// Region file layout, layout version 2. This file is the one description of
// the bytes; nothing else in the package uses a literal offset.
//
// A region is one file. Its first 4096 bytes are the header block; the data
// area starts at DataOffsetBytes (4096) and runs to the end of the file. The
// file size is the requested data size plus the header, rounded up to the
// backing page size (4 KiB on tmpfs, 2 MiB or 1 GiB on hugetlbfs), so the
// data area may be larger than requested.
//
//	file offset 0                        4096                              TotalBytes
//	+------------------------------------+---------------------------------+
//	| header block (HeaderBytes)         | data area (DataBytes)           |
//	+------------------------------------+---------------------------------+
//
// Header block. Integers are in host byte order (a region never leaves its
// host); every word is naturally aligned, and the layout is the same on every
// architecture.
//
//	0      8      12     16
//	+------+------+------+
//	|magic | ver  | hdrB |   magic "KAELIXSH"; ver = layout version (u32,
//	+------+------+------+   stored LAST, atomically: 0 = not ready);
//	|    totalBytes      |16 hdrB = header block size (u32, 4096)
//	|    dataOffsetBytes |24 u64, always 4096
//	|    dataBytes       |32 u64, totalBytes - dataOffsetBytes
//	|    pageSizeBytes   |40 u64, backing page size
//	| nodeReq | nodeAct  |48 i32 each, -1 = none / unknown
//	|    flags           |56 u64, Flag* bits
//	|    creatorPID      |64 i64
//	|    createdNS       |72 i64, unix nanoseconds
//	|    generation      |80 u64, 1 on first create, +1 per re-create
//	|    instance        |88 u64, creator's instance id, 0 = none
//	| labelB | labelPad  |96 u32 label length (<= MaxLabelBytes); u32 zero
//	|    label           |104 MaxLabelBytes (256) bytes: the label, then
//	|    ...             |    zeros (kaelixd: the full topic name)
//	| checksum | reserved|360 u32 CRC-32C of bytes [12, 360); u32 zero
//	+--------------------+368
//	| reserved, zero     |   up to 4096
//	+--------------------+
//
// Version 2 added instance and label (version 1 ended at 96 with the
// checksum); a version 1 region is refused with *VersionError.
//
// The checksum covers every field but the magic (checked exactly) and the
// version (checked first, since a different version may mean a different
// layout). Changing any offset here is a layout change: bump LayoutVersion
// and the golden numbers in layout_test.go.
const (
	offMagic           = 0
	offVersion         = offMagic + 8             // u32, atomic; written last
	offHeaderBytes     = offVersion + 4           // u32
	offTotalBytes      = offHeaderBytes + 4       // u64
	offDataOffsetBytes = offTotalBytes + 8        // u64
	offDataBytes       = offDataOffsetBytes + 8   // u64
	offPageSizeBytes   = offDataBytes + 8         // u64
	offNodeRequested   = offPageSizeBytes + 8     // i32
	offNodeActual      = offNodeRequested + 4     // i32
	offFlags           = offNodeActual + 4        // u64
	offCreatorPID      = offFlags + 8             // i64
	offCreatedNS       = offCreatorPID + 8        // i64
	offGeneration      = offCreatedNS + 8         // u64
	offInstance        = offGeneration + 8        // u64
	offLabelBytes      = offInstance + 8          // u32
	offLabelPad        = offLabelBytes + 4        // u32, zero
	offLabel           = offLabelPad + 4          // MaxLabelBytes bytes
	offChecksum        = offLabel + MaxLabelBytes // u32
	offReserved        = offChecksum + 4          // u32, zero
	headerUsedBytes    = offReserved + 4          // end of the defined fields

	// checksumStart is the first byte the checksum covers: everything after
	// the version word up to the checksum itself.
	checksumStart = offHeaderBytes
)

const (
	// HeaderBytes is the size in bytes of the header block at file offset 0.
	HeaderBytes = 4096
	// DataOffsetBytes is the file offset in bytes at which the data area
	// starts. It is fixed: a reader may rely on it without reading the header.
	DataOffsetBytes = HeaderBytes
	// LayoutVersion is the header layout this package writes and accepts.
	LayoutVersion uint32 = 2
	// Magic is the first 8 bytes of every region file.
	Magic = "KAELIXSH"
	// MaxLabelBytes is the longest Header.Label, in bytes.
	MaxLabelBytes = 256
)

// Flags records how a region was backed and prepared. Stored at offFlags.
type Flags uint64

const (
	// FlagHugePages: the file lives on hugetlbfs; PageSizeBytes is the huge
	// page size.
	FlagHugePages Flags = 1 << iota
	// FlagFallbackTmpfs: hugepages were asked for (policy auto) but the region
	// fell back to tmpfs; the creator logged why.
	FlagFallbackTmpfs
	// FlagMlocked: the creator locked the region in memory (for hugetlbfs,
	// whose pages are never swapped, set without calling mlock).
	FlagMlocked
	// FlagPrefaulted: the creator touched every page before publishing.
	FlagPrefaulted
	// FlagTHPAdvised: tmpfs region with madvise(MADV_HUGEPAGE) applied.
	FlagTHPAdvised

	knownFlags = FlagHugePages | FlagFallbackTmpfs | FlagMlocked | FlagPrefaulted | FlagTHPAdvised
)

// String lists the set flags, e.g. "hugepages|prefaulted", or "none".
func (f Flags) String() string {
	names := []struct {
		bit  Flags
		name string
	}{
		{FlagHugePages, "hugepages"},
		{FlagFallbackTmpfs, "fallback-tmpfs"},
		{FlagMlocked, "mlocked"},
		{FlagPrefaulted, "prefaulted"},
		{FlagTHPAdvised, "thp-advised"},
	}
	s := ""
	for _, n := range names {
		if f&n.bit != 0 {
			if s != "" {
				s += "|"
			}
			s += n.name
		}
	}
	if rest := f &^ knownFlags; rest != 0 {
		if s != "" {
			s += "|"
		}
		s += "unknown"
	}
	if s == "" {
		return "none"
	}
	return s
}

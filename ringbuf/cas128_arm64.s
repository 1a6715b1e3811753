#include "textflag.h"

// func cas128(addr *uint64, oldLo, oldHi, newLo, newHi uint64) bool
// A load-acquire/store-release exclusive pair loop (ARMv8.0).
TEXT ·cas128(SB), NOSPLIT, $0-41
	MOVD addr+0(FP), R0
	MOVD oldLo+8(FP), R1
	MOVD oldHi+16(FP), R2
	MOVD newLo+24(FP), R3
	MOVD newHi+32(FP), R4
again:
	LDAXP (R0), (R5, R6)
	CMP R1, R5
	BNE fail
	CMP R2, R6
	BNE fail
	STLXP (R3, R4), (R0), R7
	CBNZ R7, again
	MOVD $1, R8
	MOVB R8, ret+40(FP)
	RET
fail:
	STLXP (R5, R6), (R0), R7
	CBNZ R7, again
	MOVB ZR, ret+40(FP)
	RET

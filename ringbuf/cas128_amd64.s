#include "textflag.h"

// func cas128(addr *uint64, oldLo, oldHi, newLo, newHi uint64) bool
TEXT ·cas128(SB), NOSPLIT, $0-41
	MOVQ addr+0(FP), DI
	MOVQ oldLo+8(FP), AX
	MOVQ oldHi+16(FP), DX
	MOVQ newLo+24(FP), BX
	MOVQ newHi+32(FP), CX
	LOCK
	CMPXCHG16B (DI)
	SETEQ ret+40(FP)
	RET

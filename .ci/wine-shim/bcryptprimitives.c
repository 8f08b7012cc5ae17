/*
 * Wine-only stand-in for bcryptprimitives.dll (Wine 8 lacks it).
 *
 * Rust's std (>= 1.78) imports ProcessPrng from bcryptprimitives.dll to seed
 * HashMap's RandomState, so a Rust .exe will not even load under Wine 8
 * (exit 53, "bcryptprimitives.dll not found"). This DLL, placed next to the
 * .exe in CI only, forwards to advapi32's SystemFunction036 (RtlGenRandom),
 * which Wine implements. Real Windows (8.1+) ships the real DLL: never ship
 * this file.
 */
#include <windows.h>

/* advapi32 export: BOOLEAN RtlGenRandom(PVOID, ULONG). */
BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);

/* Same contract as the real one: fill the buffer, always succeed. SIZE_T may
 * exceed ULONG, so feed RtlGenRandom in chunks. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

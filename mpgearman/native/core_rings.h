/* The coordinator's rings served in C (core_rings.c): inbound PACKET records
 * fed to the C core with argument pointers into the ring, the core's output
 * routed into the outbound rings as coordinator/loop.py _route/_publish do.
 */
#ifndef MPG_CORE_RINGS_H
#define MPG_CORE_RINGS_H

#include "core.h"
#include "ringcore.h"

/* Records waiting for room in one outbound ring: [u32 len][bytes] each. */
typedef struct {
    unsigned char *buf;
    uint64_t head, used, size;
    uint32_t count;
} pendq;

typedef struct {
    uint32_t n;                 /* acceptor slots */
    rc_ring *in, *out;
    pendq *pending;
    uint16_t *gens;
    uint64_t merge_limit, piece;
    /* per route() call: the open run of each connection */
    uint32_t *next;
    uint32_t next_cap;
    uint64_t held;              /* inbound head after the record rings_serve returned */
    uint64_t contained;         /* requests that cost their connection, since asked */
    int64_t bad_conn;           /* ... the last of them: its connection and type */
    int bad_type;
} rings;

int rings_init(rings *r, unsigned char *base, uint64_t len, uint32_t n,
               const uint64_t *in_off, const uint64_t *out_off,
               uint64_t merge_limit, uint64_t piece);
void rings_fini(rings *r);

/* Apply inbound records of slot i to the core: PACKETs in C, until the first
   other record (returned through rec/len, consumed) or none left or budget
   records. Returns the number consumed, -2 if the ring is corrupt. */
int64_t rings_serve(rings *r, core *k, uint32_t i, uint32_t budget,
                    const unsigned char **rec, uint32_t *len);
/* Publish the inbound head past the record rings_serve returned. */
void rings_release(rings *r, uint32_t i);
/* Append output made outside the core (relays, admin answers, closes):
   close 0 sends p[0:n], 1 closes. */
int out_put(core *k, int64_t conn, const void *p, uint64_t n, int close);
/* Append a spooled send made outside the core: head, then the spool file
   `name` of `size` bytes, kept as the core keeps its own (hlen > 0), so
   that a drain() on the Python side gives it back as what it is. */
int out_put_spooled(core *k, int64_t conn, const void *head, uint32_t hlen,
                    const void *name, uint32_t nlen, uint64_t size);
/* The core's output into the pending records of each slot; a dead acceptor
   generation's output is dropped (its spool names released through the
   core's release callback). -1: no memory (the output is kept for a retry). */
int rings_route(rings *r, core *k);
/* Pending records into the rings; bells[i] = 1 where the reader sleeps. */
void rings_publish(rings *r, unsigned char *bells);

#endif

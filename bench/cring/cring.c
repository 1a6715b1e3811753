// cring: the C reference for kaelix-bench's copy-floor. A fixed-slot SPSC
// ring between two processes (fork) over a MAP_SHARED mapping: records of
// SIZE bytes copied in by the producer (CPU A) and out by the consumer
// (CPU B), head and tail on their own 128-byte line pairs, each side
// caching the other's index, head published per record with a release
// store, tail every 256 records. Prints one line:
//   cring size=S records=N ns=T rate=R
// Usage: cring SIZE SECONDS CPU_A CPU_B
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DATA (4u << 20)
#define ACK 256

struct ctl {
	_Alignas(128) uint64_t head;
	_Alignas(128) uint64_t tail;
	_Alignas(128) uint64_t stop, received, ns;
};

static uint64_t now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void pin(int cpu) {
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof s, &s);
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: cring SIZE SECONDS CPU_A CPU_B\n");
		return 2;
	}
	size_t size = (size_t)atoi(argv[1]);
	double secs = atof(argv[2]);
	size_t slot = (size + 7) & ~(size_t)7;
	uint64_t slots = 64;
	while (2 * slots * slot <= DATA) slots *= 2;
	uint64_t mask = slots - 1;
	size_t total = sizeof(struct ctl) + slots * slot;
	char *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) return 1;
	struct ctl *c = (struct ctl *)mem;
	char *data = mem + sizeof(struct ctl);
	pid_t pid = fork();
	if (pid == 0) { // consumer
		pin(atoi(argv[4]));
		char out[1 << 16];
		uint64_t next = 0, avail = 0, first = 0;
		for (;;) {
			if (next == avail) {
				__atomic_store_n(&c->tail, next, __ATOMIC_RELEASE);
				while ((avail = __atomic_load_n(&c->head, __ATOMIC_ACQUIRE)) == next)
					if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) &&
					    __atomic_load_n(&c->head, __ATOMIC_ACQUIRE) == next)
						goto done;
			}
			memcpy(out, data + (next & mask) * slot, size);
			if (next == 0) first = now();
			next++;
			if ((next & (ACK - 1)) == 0) __atomic_store_n(&c->tail, next, __ATOMIC_RELEASE);
		}
	done:
		c->received = next;
		c->ns = now() - first;
		__atomic_store_n(&c->tail, next, __ATOMIC_RELEASE);
		_exit(0);
	}
	pin(atoi(argv[3]));
	char in[1 << 16];
	memset(in, 1, sizeof in);
	uint64_t next = 0, limit = slots;
	uint64_t end = now() + (uint64_t)(secs * 1e9);
	for (;;) {
		for (int k = 0; k < 256; k++) {
			while (next == limit) limit = __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE) + slots;
			memcpy(data + (next & mask) * slot, in, size);
			*(uint64_t *)in = next;
			next++;
			__atomic_store_n(&c->head, next, __ATOMIC_RELEASE);
		}
		if (now() >= end) break;
	}
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	waitpid(pid, NULL, 0);
	if (c->received != next) {
		fprintf(stderr, "cring: sent %llu received %llu\n", (unsigned long long)next, (unsigned long long)c->received);
		return 1;
	}
	printf("cring size=%zu records=%llu ns=%llu rate=%.0f\n", size, (unsigned long long)next, (unsigned long long)c->ns,
	       (double)(next - 1) / ((double)c->ns / 1e9));
	return 0;
}

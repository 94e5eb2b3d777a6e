// Forks busy children: RLIMIT_CPU counts each process apart, so eight of them used eight
// times a question's CPU limit until the box's whole cgroup was accounted.
#include <unistd.h>

int main(void) {
	for (int i = 0; i < 7; i++) {
		if (fork() == 0) break;
	}
	for (volatile unsigned long n = 0;; n++) {
	}
}

// Creates up to 100,000 empty files in the box.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
	char name[32];
	long made = 0;
	for (; made < 100000; made++) {
		snprintf(name, sizeof name, "f%ld", made);
		int fd = open(name, O_CREAT | O_WRONLY, 0600);
		if (fd < 0) break;
		close(fd);
	}
	printf("%ld\n", made);
	return 0;
}

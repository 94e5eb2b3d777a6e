# A hostile submission: it prints each test's input as its answer, so that a wrong-answer
# verdict showing the program's output would show the hidden test's input.
import sys

sys.stdout.write(sys.stdin.read())
sys.stderr.write("debug: " + "x" * 5000 + "\n")

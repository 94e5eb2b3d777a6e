// Package judge will judge code answers in a sandbox: a queue of submissions, a pool of
// workers, leased sandbox boxes and verdicts. It comes with the issue on code answers;
// until then the quiz package refuses quizzes with code questions.
package judge

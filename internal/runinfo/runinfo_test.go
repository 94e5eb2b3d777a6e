package runinfo

import "testing"

func TestQuoteArgs(t *testing.T) {
	got := QuoteArgs([]string{"--quick", "--delays", "5, 25", "--x", "it's", ""})
	want := ` --quick --delays '5, 25' --x 'it'\''s' ''`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

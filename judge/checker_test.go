package judge

import "testing"

func TestCheck(t *testing.T) {
	tests := []struct {
		kind, want, got string
		ok              bool
	}{
		{"exact", "1 2\n", "1 2\n", true},
		{"exact", "1 2\n", "1 2", false},
		{"exact", "", "", true},
		{"lines", "a\nb\n", "a  \nb\t\n\n\n", true},
		{"lines", "a\nb", "a\r\nb\r\n", true},
		{"lines", "a b\n", "a  b\n", false},
		{"lines", "a\n\nb\n", "a\nb\n", false},
		{"lines", " a\n", "a\n", false},
		{"tokens", "1 2\n3", "1\n2   3\n\n", true},
		{"tokens", "1 2 3", "1 2", false},
		{"tokens", "", "  \n", true},
		{"float:1e-6", "0.3333333 2", "0.33333334 2.0000001", true},
		{"float:1e-6", "1000000", "1000000.9", true}, // relative
		{"float:1e-6", "0.5", "0.5001", false},
		{"float:1e-6", "yes 1.0", "yes 1", true},
		{"float:1e-6", "yes 1.0", "no 1", false},
		{"float:1e-6", "1 2", "1", false},
		{"float:1e-6", "1", "nan", false},
		{"float:1e-6", "1", "inf", false},
		{"float:0.1", "1", "1.09", true},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.want+"/"+tt.got, func(t *testing.T) {
			ok, err := Check(tt.kind, []byte(tt.want), []byte(tt.got))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if ok != tt.ok {
				t.Errorf("got %v, want %v", ok, tt.ok)
			}
		})
	}
}

func TestCheckUnknown(t *testing.T) {
	for _, kind := range []string{"", "diff", "float:", "float:x", "float:-1", "float:NaN"} {
		if _, err := Check(kind, nil, nil); err == nil {
			t.Errorf("Check(%q): got no error, want one", kind)
		}
	}
}

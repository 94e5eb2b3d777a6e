package main

import (
	"reflect"
	"testing"
)

func TestWireWrap(t *testing.T) {
	sync, seen := []byte(`{"type":"sync","t0":1.5}`), []byte(`{"type":"seen","seq":3}`)
	bulb := &wire{proto: protoBulb}
	if got := string(bulb.wrap("sync", sync)); got != string(sync) {
		t.Errorf("bulb: got %s, want the frame as it is", got)
	}
	cf := &wire{proto: protoCentrifuge}
	if got, want := string(cf.centrifugeHello("lg-1", "room")),
		`{"id":1,"connect":{"name":"lg-1"}}`+"\n"+`{"id":2,"subscribe":{"channel":"room"}}`; got != want {
		t.Errorf("hello: got %s, want %s", got, want)
	}
	for _, tt := range []struct {
		typ  string
		msg  []byte
		want string
	}{
		{"sync", sync, `{"id":3,"rpc":{"method":"sync","data":{"type":"sync","t0":1.5}}}`},
		{"seen", seen, `{"send":{"data":{"type":"seen","seq":3}}}`},
		{"sync", sync, `{"id":4,"rpc":{"method":"sync","data":{"type":"sync","t0":1.5}}}`},
		{"ack", []byte(`{"type":"ack","seq":3}`), `{"send":{"data":{"type":"ack","seq":3}}}`},
	} {
		if got := string(cf.wrap(tt.typ, tt.msg)); got != tt.want {
			t.Errorf("centrifuge %s: got %s, want %s", tt.typ, got, tt.want)
		}
	}
}

func TestWireUnwrap(t *testing.T) {
	start := `{"type":"start","n":1,"seq":9}`
	bulb := &wire{proto: protoBulb}
	if in, err := bulb.unwrap([]byte(start)); err != nil || len(in.frames) != 1 || string(in.frames[0]) != start {
		t.Errorf("bulb: got %+v, %v, want the one frame", in, err)
	}
	cf := &wire{proto: protoCentrifuge}
	msg := `{"id":1,"connect":{"client":"c","version":"","ping":25,"pong":true}}
{"id":2,"subscribe":{}}
{}
{"push":{"channel":"room","pub":{"data":` + start + `}}}
{"id":3,"rpc":{"data":{"type":"sync","t0":1,"t1":2,"t2":3}}}
{"id":4,"error":{"code":103,"message":"permission denied"}}
{"push":{"disconnect":{"code":3001,"reason":"shutdown"}}}
`
	in, err := cf.unwrap([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	want := inbound{
		frames:  [][]byte{[]byte(start), []byte(`{"type":"sync","t0":1,"t1":2,"t2":3}`)},
		pings:   1,
		replied: []uint32{1, 2, 3},
		errs:    []string{"command 4: error 103 permission denied", "disconnect 3001 shutdown"},
	}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("got %+v\nwant %+v", in, want)
	}
	if _, err := cf.unwrap([]byte("{\"push\":")); err == nil {
		t.Error("got no error for a cut message")
	}
}

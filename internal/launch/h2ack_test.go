package launch

import (
	"bytes"
	"io"
	"net"
	"testing"
	"testing/iotest"
	"time"
)

// readerConn is a net.Conn whose reads come from r.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// frame is an HTTP/2 frame with the given type, flags and payload.
func frame(typ, flags byte, payload string) string {
	n := len(payload)
	return string([]byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, 0, 0, 0, 1}) + payload
}

func TestAckFilterConn(t *testing.T) {
	var (
		settings = frame(h2FrameSettings, 0, "\x00\x03\x00\x00\x00\x64")
		ack      = frame(h2FrameSettings, h2FlagSettingAck, "")
		headers  = frame(h2FrameHeaders, 0x4|0x1, "\x82\x86\x84")
		data     = frame(0x0, 0x1, "body")
	)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"HTTP/1 passes through", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"a stream shorter than the preface", "PRI * HTTP", "PRI * HTTP"},
		{"the matcher's acknowledgement after the headers",
			h2Preface + settings + headers + ack + data + ack, h2Preface + settings + headers + data + ack},
		{"the matcher's acknowledgement before the headers",
			h2Preface + settings + ack + headers + ack, h2Preface + settings + headers + ack},
		{"two client SETTINGS owe two acknowledgements",
			h2Preface + settings + settings + headers + ack + ack + ack, h2Preface + settings + settings + headers + ack},
		{"SETTINGS after the headers owe nothing",
			h2Preface + settings + headers + settings + ack + ack + ack, h2Preface + settings + headers + settings + ack + ack},
		{"a connection cut inside a frame header", h2Preface + settings + "\x00\x00", h2Preface + settings + "\x00\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader([]byte(tc.in)), iotest.OneByteReader(bytes.NewReader([]byte(tc.in)))} {
				c := &ackFilterConn{Conn: readerConn{r: r}}
				got, err := io.ReadAll(c)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Errorf("read %q\nwant %q", got, tc.want)
				}
			}
		})
	}
}

// A short HTTP/1 request is handed over as soon as it differs from the
// HTTP/2 preface, without waiting for more bytes.
func TestAckFilterConnShortRequest(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := &ackFilterConn{Conn: server}
	go client.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, len("GET / HTTP/1.0\r\n\r\n"))
	if err != nil || string(buf[:n]) != "GET / HTTP/1.0\r\n\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

package launch

import (
	"io"
	"net"
)

// HTTP/2 wire constants (RFC 9113 sections 3.4, 4.1, 6.2 and 6.5).
const (
	h2Preface        = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2FrameHeaders   = 0x1
	h2FrameSettings  = 0x4
	h2FlagSettingAck = 0x1
)

// On a TLS client port cmux tells gRPC from other HTTP/2 by reading the
// first request's headers. Some gRPC clients send no headers before the
// server's SETTINGS frame, so the matcher answers each client SETTINGS
// frame it reads with one of its own (cmux.HTTP2MatchHeaderFieldSendSettings).
// When the connection is not gRPC it goes on to the HTTP server, which
// sends its own SETTINGS and counts acknowledgements: the client's
// acknowledgement of the matcher's extra frame would look to it like an
// acknowledgement of settings it never sent, a protocol error that ends the
// connection. ackFilterConn removes exactly those acknowledgements from
// what the HTTP server reads.

// ackFilterListener wraps each accepted connection in an ackFilterConn.
type ackFilterListener struct{ net.Listener }

func (l ackFilterListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &ackFilterConn{Conn: c}, nil
}

// ackFilterConn reads an HTTP/2 connection's client side with the SETTINGS
// acknowledgements owed to the cmux matcher removed; any other stream
// (HTTP/1) passes through untouched.
//
// The matcher wrote one SETTINGS frame per non-acknowledgement SETTINGS
// frame the client sent before its first HEADERS frame (it stops reading
// there), and the client acknowledges frames in the order it received them,
// so the first acknowledgements, one per such frame, are the matcher's.
//
// Invariant: owed ≥ 0 is the number of the matcher's SETTINGS frames whose
// acknowledgement has not been read yet.
type ackFilterConn struct {
	net.Conn

	started    bool   // the preface has been checked
	passthru   bool   // nothing more to remove: plain reads
	headerSeen bool   // the client's first HEADERS frame has been read
	owed       int    // acknowledgements still to remove
	pending    []byte // bytes read and checked, not yet returned
	left       int    // payload bytes of the current frame not yet read
}

func (c *ackFilterConn) Read(p []byte) (int, error) {
	for {
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		if c.passthru {
			return c.Conn.Read(p)
		}
		if c.left > 0 {
			if len(p) > c.left {
				p = p[:c.left]
			}
			n, err := c.Conn.Read(p)
			c.left -= n
			return n, err
		}
		if !c.started {
			if err := c.readPreface(); err != nil {
				return 0, err
			}
			continue
		}
		if c.headerSeen && c.owed == 0 {
			c.passthru = true
			continue
		}
		if err := c.readFrameHeader(); err != nil {
			return 0, err
		}
	}
}

// readPreface checks whether the stream starts with the HTTP/2 client
// preface; if not, it is not HTTP/2 and passes through. It reads no further
// than the first byte that differs, so a short HTTP/1 request is never kept
// waiting for bytes its client will not send.
func (c *ackFilterConn) readPreface() error {
	buf := make([]byte, len(h2Preface))
	n := 0
	for n < len(buf) {
		m, err := c.Conn.Read(buf[n:])
		n += m
		if string(buf[:n]) != h2Preface[:n] || (err != nil && n > 0) {
			c.started, c.passthru, c.pending = true, true, buf[:n]
			return nil // what was read goes first; a read error shows again next time
		}
		if err != nil {
			return err
		}
	}
	c.started, c.pending = true, buf
	return nil
}

// readFrameHeader reads the next frame header, counts or removes SETTINGS
// frames, and queues the header for the reader otherwise.
func (c *ackFilterConn) readFrameHeader() error {
	var h [9]byte
	n, err := io.ReadFull(c.Conn, h[:])
	if n < len(h) {
		// A short frame: hand over what arrived and stop filtering.
		c.pending, c.passthru = h[:n], true
		if n > 0 {
			return nil
		}
		return err
	}
	length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	typ, ack := h[3], h[4]&h2FlagSettingAck != 0
	switch {
	case typ == h2FrameSettings && ack && c.owed > 0:
		c.owed--
		// An acknowledgement has no payload; skip one if a client sent it.
		if _, err := io.CopyN(io.Discard, c.Conn, int64(length)); err != nil {
			return err
		}
		return nil
	case typ == h2FrameSettings && !ack && !c.headerSeen:
		c.owed++
	case typ == h2FrameHeaders:
		c.headerSeen = true
	}
	c.pending = append(h[:0:0], h[:]...)
	c.left = length
	return nil
}

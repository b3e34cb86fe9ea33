package pop3

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

// fakeServer answers one POP3 session from a script of expected commands.
func fakeServer(t *testing.T, script []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		c.Write([]byte("+OK POP3 ready\r\n"))
		for i := 0; i+1 < len(script); i += 2 {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if got := strings.TrimRight(line, "\r\n"); got != script[i] {
				c.Write([]byte("-ERR unexpected " + got + "\r\n"))
				return
			}
			c.Write([]byte(script[i+1]))
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) *Client {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(conn, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSession(t *testing.T) {
	addr := fakeServer(t, []string{
		"USER alice", "+OK\r\n",
		"PASS secret", "+OK logged in\r\n",
		"STAT", "+OK 2 320\r\n",
		"UIDL", "+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n",
		"TOP 2 0", "+OK\r\nSubject: x\r\n..dotted: y\r\n\r\n.\r\n",
		"DELE 2", "+OK\r\n",
		"RETR 9", "-ERR no such message\r\n",
		"QUIT", "+OK bye\r\n",
	})
	c := dial(t, addr)
	if c.Greeting != "POP3 ready" {
		t.Errorf("greeting %q", c.Greeting)
	}
	if err := c.Login("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if n, size, err := c.Stat(); err != nil || n != 2 || size != 320 {
		t.Fatalf("stat %d %d %v", n, size, err)
	}
	uids, err := c.UIDL()
	if err != nil || len(uids) != 2 || uids[1] != (MessageUID{2, "bbb"}) {
		t.Fatalf("uidl %v %v", uids, err)
	}
	top, err := c.Top(2, 0)
	if err != nil || !strings.Contains(string(top), "\n.dotted: y") {
		t.Fatalf("top %q %v", top, err)
	}
	if err := c.Dele(2); err != nil {
		t.Fatal(err)
	}
	_, err = c.Retr(9)
	var pe *Error
	if !errors.As(err, &pe) || pe.Text != "no such message" {
		t.Fatalf("retr: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestAuthPlainAndFailure(t *testing.T) {
	addr := fakeServer(t, []string{
		"AUTH PLAIN AGFsaWNlAHNlY3JldA==", "-ERR [AUTH] Authentication failed\r\n",
	})
	c := dial(t, addr)
	err := c.Auth(sasl.NewPlainClient("", "alice", "secret"))
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("auth: %v", err)
	}
}

func TestParseUIDLRejectsGarbage(t *testing.T) {
	for _, in := range []string{"x y\r\n", "1\r\n", "0 a\r\n", "1 a b\r\n"} {
		if _, err := ParseUIDL([]byte(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func FuzzParseUIDL(f *testing.F) {
	f.Add([]byte("1 aaa\r\n2 bbb\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		uids, err := ParseUIDL(b)
		for _, u := range uids {
			if err == nil && (u.Num < 1 || u.UID == "") {
				t.Fatalf("bad entry %v", u)
			}
		}
		parseStatus(string(b))
	})
}

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// policyClient is one Postfix-like connection to the policy service
// (the enforcement and suppression scenarios).
type policyClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialPolicyClient(addr string) (*policyClient, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &policyClient{c: c, r: bufio.NewReader(c)}, nil
}

// ask sends one request and returns the action and the time to it.
func (p *policyClient) ask(req string) (string, int64, error) {
	p.c.SetDeadline(time.Now().Add(5 * time.Second))
	sent := time.Now()
	if _, err := io.WriteString(p.c, req); err != nil {
		return "", 0, err
	}
	line, err := p.r.ReadString('\n')
	if err == nil {
		_, err = p.r.ReadString('\n')
	}
	if err != nil {
		return "", 0, fmt.Errorf("policy answer: %w", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "action="), int64(time.Since(sent)), nil
}

package mailboxretriever

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// xoauth2Client is the XOAUTH2 SASL mechanism used by Gmail and Microsoft
// 365: one initial response carrying the user and the bearer token. On a
// failure the server sends a JSON error as a challenge, which is answered
// empty so that the server ends the exchange with its NO / -ERR.
type xoauth2Client struct {
	user, token string
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

func (c *xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }

// tokenTimeout bounds a token_command.
const tokenTimeout = 30 * time.Second

// saslFor builds the SASL client of an account, reading the OAuth2 token
// afresh. Errors never contain the password or the token.
func saslFor(ctx context.Context, a Account) (sasl.Client, error) {
	switch a.Auth {
	case AuthXOAUTH2:
		token, err := readToken(ctx, a)
		if err != nil {
			return nil, err
		}
		return &xoauth2Client{user: a.Username, token: token}, nil
	case AuthLogin:
		return sasl.NewLoginClient(a.Username, a.Password.Reveal()), nil
	default:
		return sasl.NewPlainClient("", a.Username, a.Password.Reveal()), nil
	}
}

func readToken(ctx context.Context, a Account) (string, error) {
	var raw []byte
	if a.TokenFile != "" {
		b, err := os.ReadFile(a.TokenFile)
		if err != nil {
			return "", fmt.Errorf("read token_file: %w", err)
		}
		raw = b
	} else {
		ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, a.TokenCommand[0], a.TokenCommand[1:]...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			// stderr may help; stdout may hold a token and is never shown.
			msg := strings.Join(strings.Fields(stderr.String()), " ")
			if len(msg) > 200 {
				msg = msg[:200]
			}
			return "", fmt.Errorf("token_command %s: %v %s", a.TokenCommand[0], err, msg)
		}
		raw = stdout.Bytes()
	}
	token := strings.TrimSpace(string(raw))
	if token == "" || strings.ContainsAny(token, " \t\r\n\x01") {
		return "", errors.New("the OAuth2 token is empty or not one line")
	}
	return token, nil
}

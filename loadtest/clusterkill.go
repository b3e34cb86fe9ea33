package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The five kills, one at a time: each SIGKILLs one process by its pid,
// measures the takeover, restarts the process after opts.down with the
// same command line, waits until it is ready, and leaves opts.pause for
// recovery before the next.

// streamLeader is the server name of the stream's leader, "" during an
// election.
func (c *clusterRun) streamLeader(ctx context.Context, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", fmt.Errorf("stream %s has no cluster info (not replicated?)", stream)
	}
	return info.Cluster.Leader, nil
}

// restart starts p again after the rest of opts.down since killedAt and
// returns how long it took to be ready.
func (c *clusterRun) restart(ctx context.Context, p *proc, killedAt time.Time, down time.Duration, ready func() error) (int64, error) {
	if err := sleepCtx(ctx, time.Until(killedAt.Add(down))); err != nil {
		return 0, err
	}
	t := time.Now()
	if err := p.start(); err != nil {
		return 0, err
	}
	// A clickhouse-server re-attaches every replicated table at start:
	// tens of seconds on a busy machine.
	if err := waitUntil(ctx, 3*time.Minute, 50*time.Millisecond, p.name+" ready after restart", func() error {
		if err := p.unexpectedExit(); err != nil {
			return err
		}
		return ready()
	}); err != nil {
		return 0, fmt.Errorf("%w; its log ends:\n%s", err, tailFile(p.logPath, 2048))
	}
	return time.Since(t).Milliseconds(), nil
}

func (c *clusterRun) killNATSLeader(ctx context.Context) (clusterKill, error) {
	k := clusterKill{What: "nats-stream-leader", TakeoverMs: -1}
	var leader string
	if err := waitUntil(ctx, 30*time.Second, 200*time.Millisecond, "stream "+clusterStream+" has a leader", func() (err error) {
		leader, err = c.streamLeader(ctx, clusterStream)
		if err == nil && leader == "" {
			err = errors.New("no leader")
		}
		return err
	}); err != nil {
		return k, err
	}
	var node *natsNode
	for _, n := range c.nats {
		if n.name == leader {
			node = n
		}
	}
	if node == nil {
		return k, fmt.Errorf("stream leader %q is none of the nodes", leader)
	}
	k.Victim = leader
	progress(c.log, "SIGKILL nats %s, leader of stream %s", leader, clusterStream)
	cu := c.watchCatchUp(ctx, &k, false)
	killedAt := time.Now()
	if err := node.kill(); err != nil {
		return k, err
	}
	err := waitUntil(ctx, 60*time.Second, 100*time.Millisecond, "a new leader of "+clusterStream, func() error {
		l, err := c.streamLeader(ctx, clusterStream)
		if err != nil {
			return err
		}
		if l == "" || l == leader {
			return fmt.Errorf("leader %q", l)
		}
		k.TakeoverMs = time.Since(killedAt).Milliseconds()
		k.Takeover = "stream leader " + l
		return nil
	})
	if err != nil {
		c.addError("nats: %v", err)
	}
	if k.RestartReadyMs, err = c.restart(ctx, node.proc, killedAt, c.opts.down, node.healthy); err != nil {
		return k, err
	}
	sleepCtx(ctx, c.opts.pause)
	cu.wait(0)
	return k, nil
}

func (c *clusterRun) killClickHouse(ctx context.Context) (clusterKill, error) {
	r := c.ch[0] // the first of clickhouse.addrs: where the sinks insert
	k := clusterKill{What: "clickhouse-replica", Victim: r.name}
	if !c.res.ClickHouseCluster {
		k.What = "clickhouse-server" // the only one: inserts wait for it
	}
	progress(c.log, "SIGKILL clickhouse %s", r.name)
	cu := c.watchCatchUp(ctx, &k, true)
	k.Takeover = "first event stored after the kill"
	killedAt := time.Now()
	if err := r.kill(); err != nil {
		return k, err
	}
	// Down at least as long as the ZooKeeper session (4 s), so the
	// restarted replica is not refused as "already active".
	ready, err := c.restart(ctx, r.proc, killedAt, max(c.opts.down, 5*time.Second), r.ping)
	if err != nil {
		return k, err
	}
	k.RestartReadyMs = ready
	sleepCtx(ctx, c.opts.pause)
	cu.wait(0)
	if k.TakeoverMs < 0 {
		c.addError("no event stored after clickhouse %s was killed", r.name)
	}
	return k, nil
}

func (c *clusterRun) killSink(ctx context.Context) (clusterKill, error) {
	w := c.sinks[0]
	k := clusterKill{What: "clickhouse-sink", Victim: w.name}
	progress(c.log, "SIGKILL %s (pid %d)", w.name, w.pid())
	cu := c.watchCatchUp(ctx, &k, true)
	k.Takeover = "first event stored after the kill"
	killedAt := time.Now()
	if err := w.kill(); err != nil {
		return k, err
	}
	ready, err := c.restart(ctx, w.proc, killedAt, c.opts.down, w.ready)
	if err != nil {
		return k, err
	}
	k.RestartReadyMs = ready
	sleepCtx(ctx, c.opts.pause)
	cu.wait(0)
	if k.TakeoverMs < 0 {
		c.addError("no event stored after %s was killed", w.name)
	}
	return k, nil
}

// leaseHolderPid is the pid in the dns-sweeper lease's holder
// (host-pid-random), 0 when nobody holds it.
func (c *clusterRun) leaseHolderPid(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, "leases")
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, "dns-sweeper")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	parts := strings.Split(string(e.Value()), "-")
	if len(parts) < 3 {
		return 0, fmt.Errorf("lease holder %q is not host-pid-random", e.Value())
	}
	return strconv.Atoi(parts[len(parts)-2])
}

func (c *clusterRun) killSweeperLeader(ctx context.Context) (clusterKill, error) {
	k := clusterKill{What: "dns-sweeper-leader", TakeoverMs: -1}
	var leader, standby *clusterWorker
	if err := waitUntil(ctx, 30*time.Second, 200*time.Millisecond, "a dns-sweeper holds the lease", func() error {
		pid, err := c.leaseHolderPid(ctx)
		if err != nil {
			return err
		}
		for i, w := range c.sweepers {
			if w.pid() == pid {
				leader, standby = w, c.sweepers[1-i]
				return nil
			}
		}
		return fmt.Errorf("lease held by pid %d, none of the dns-sweepers", pid)
	}); err != nil {
		return k, err
	}
	k.Victim = leader.name
	progress(c.log, "SIGKILL %s (pid %d), holder of the dns-sweeper lease", leader.name, leader.pid())
	cu := c.watchCatchUp(ctx, &k, false)
	killedAt := time.Now()
	if err := leader.kill(); err != nil {
		return k, err
	}
	err := waitUntil(ctx, 3*c.opts.leaseTTL+30*time.Second, 50*time.Millisecond, standby.name+" takes the lease", func() error {
		pid, err := c.leaseHolderPid(ctx)
		if err != nil {
			return err
		}
		if pid != standby.pid() {
			return fmt.Errorf("held by pid %d", pid)
		}
		k.TakeoverMs = time.Since(killedAt).Milliseconds()
		k.Takeover = fmt.Sprintf("lease taken by %s (ttl %s)", standby.name, c.opts.leaseTTL)
		return nil
	})
	if err != nil {
		c.addError("dns-sweeper lease: %v", err)
	}
	if k.RestartReadyMs, err = c.restart(ctx, leader.proc, killedAt, c.opts.down, leader.ready); err != nil {
		return k, err
	}
	sleepCtx(ctx, c.opts.pause)
	cu.wait(0)
	return k, nil
}

// killEvaluator kills the copy of partition 0. Partitions are disjoint
// (no standby owns another's subjects): its takeover is its own restart,
// from the kill to /readyz, while the policy service keeps answering
// from the decisions it holds.
func (c *clusterRun) killEvaluator(ctx context.Context) (clusterKill, error) {
	w := c.evals[0]
	k := clusterKill{What: "complaint-evaluator", Victim: w.name + " (partition 0 of 2)", Takeover: "restarted copy ready"}
	progress(c.log, "SIGKILL %s (pid %d)", w.name, w.pid())
	cu := c.watchCatchUp(ctx, &k, false)
	killedAt := time.Now()
	if err := w.kill(); err != nil {
		return k, err
	}
	ready, err := c.restart(ctx, w.proc, killedAt, c.opts.down, w.ready)
	if err != nil {
		return k, err
	}
	k.RestartReadyMs = ready
	k.TakeoverMs = time.Since(killedAt).Milliseconds()
	sleepCtx(ctx, c.opts.pause)
	cu.wait(0)
	return k, nil
}

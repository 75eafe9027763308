package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// The fault matrix: each test breaks one backend of a pool in one way
// while loadWorkers clients keep pipelining through the proxy (see
// faultload_test.go), and checks what every client saw, phase by phase:
// keys on the healthy servers never get an error, the broken server's keys
// get an error reply (never a hang, a disconnect or another request's
// reply), no batch waits past the pool's Timeout plus latencySlack, and the
// proxy recovers by itself. Each test then shuts the proxy down and checks
// that the backends count no connection from it and that no goroutine is
// left.

const (
	// latencySlack is what a batch may wait beyond the pool's Timeout:
	// generous, for a loaded machine running the race detector.
	latencySlack = time.Second
	// hangLimit is how long past Timeout a client waits for a reply
	// before it reports the proxy as hung.
	hangLimit = 5 * time.Second
	// victimIndex is the ring index of the server the tests break.
	victimIndex = 1
	// warmUp is how long the load runs before the fault, and watch how
	// long it is watched after recovery.
	warmUp = 200 * time.Millisecond
	watch  = 300 * time.Millisecond
)

var faultKinds = []protocol.Kind{protocol.Redis, protocol.Memcache}

// startEqualBackends starts n backends of equal weight, so that taking
// one out of the ring (ejection) moves only its own keys.
func startEqualBackends(t *testing.T, kind protocol.Kind, n int) []backend {
	t.Helper()
	bs := startBackends(t, kind, n)
	for i := range bs {
		bs[i].entry.Weight = 1
	}
	return bs
}

// backendAt returns the backend at ring index i.
func backendAt(t *testing.T, s *proxy.Server, bs []backend, i int) backend {
	t.Helper()
	for _, b := range bs {
		if b.entry.Addr == s.Ring().Server(i).Addr {
			return b
		}
	}
	t.Fatalf("no backend at ring index %d", i)
	return backend{}
}

// countersFor opens a connCounter on every real backend, by ring index.
// It must run before the proxy has connected to them.
func countersFor(t *testing.T, kind protocol.Kind, s *proxy.Server, bs []backend) map[int]*connCounter {
	t.Helper()
	cs := map[int]*connCounter{}
	for i := range s.Ring().Len() {
		for _, b := range bs {
			if b.Server != nil && b.entry.Addr == s.Ring().Server(i).Addr {
				cs[i] = newConnCounter(t, kind, b.Addr, 0)
			}
		}
	}
	return cs
}

// onVictim reports whether the ring as it is now puts key on the victim.
func onVictim(s *proxy.Server) func(string) bool {
	ring := s.Ring()
	return func(k string) bool { return ring.PickString(k) == victimIndex }
}

// assertErrorsIn checks that every error reply of group g was one of want.
func assertErrorsIn(t *testing.T, ta *tally, g int, want ...string) {
	t.Helper()
	for _, msg := range ta.errTexts(g) {
		assert.Contains(t, want, msg, "unexpected error reply for %s keys", groupNames[g])
	}
}

// shutdownAndCheck shuts the proxy down with the clients still connected,
// and checks that the proxy and the backends count no connection between
// them any more.
func shutdownAndCheck(t *testing.T, s *proxy.Server, l *load, counters map[int]*connCounter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	l.closeClients()
	requireBackendConns(t, s, counters, func(int) int64 { return 0 })
	st := s.Stats()
	assert.Zero(t, st.ClientConnections)
	for i := range st.Servers {
		assert.Zero(t, st.Servers[i].ServerConnections, "server %d", i)
	}
}

// killErrors are the replies to requests for a server killed with -9:
// its connection closes (EOF, or a reset when it had unread data, or a
// broken pipe when the proxy was writing), then it refuses connections,
// and while it is ejected the pool refuses requests for it.
var killErrors = []string{"unknown", "Connection reset by peer", "Broken pipe", "Connection refused"}

// Every scenario runs its load through phases. Between the phase before a
// fault and the phase under it, a transition phase lets the batches sent
// before the fault finish (load.settle) before the fault is applied, so
// that the phase under the fault holds only batches sent after it.

// TestFaultKillBackend kills one of three backends with SIGKILL under load.
// Without auto_eject_hosts its keys get a clear error reply from then on;
// with it, they get one until the server is ejected, and are then served
// by the other servers without a single error, while the pool's probes of
// the dead server keep failing and leave it ejected.
func TestFaultKillBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("fault matrix under continuous load: not part of the -short loop")
	}
	for _, kind := range faultKinds {
		for _, eject := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/eject=%v", kind, eject), func(t *testing.T) {
				t.Cleanup(func() { verifyNoLeaks(t) })
				const timeout = time.Second
				bs := startEqualBackends(t, kind, 3)
				s, addr := startProxy(t, kind, bs, func(c *proxy.Config) {
					c.Backend.Timeout = timeout
					c.Backend.AutoEject = eject
					c.Backend.FailureLimit = 2
					c.Backend.RetryTimeout = 250 * time.Millisecond
				})
				victim := backendAt(t, s, bs, victimIndex)
				counters := countersFor(t, kind, s, bs)
				l := startLoad(t, kind, addr, onVictim(s), timeout+hangLimit, "healthy")
				time.Sleep(warmUp)

				l.next("killing")
				l.settle(t)
				require.NoError(t, syscall.Kill(victim.PID, syscall.SIGKILL))
				waitDead(t, victim.Server)
				killed := l.next("killed")
				if eject {
					require.Eventually(t, func() bool { return !s.Live(victimIndex) }, 5*time.Second, time.Millisecond)
					t.Logf("ejected %v after the kill", time.Since(killed).Round(time.Millisecond))
					l.next("ejected")
				}
				time.Sleep(600 * time.Millisecond)
				l.stopClients()

				errs := l.report(t, timeout+latencySlack)
				healthy, total := l.phaseSum(t, "healthy", nil), l.total()
				assert.Zero(t, healthy.nerr(groupVictim))
				assert.Positive(t, total.nerr(groupVictim), "the dead server's keys got error replies")
				assertErrorsIn(t, &total, groupVictim, killErrors...)
				if eject {
					ej := l.phaseSum(t, "ejected", nil)
					assert.Zero(t, ej.nerr(groupVictim), "once ejected, the dead server's keys are served elsewhere")
					assert.Positive(t, ej.ok[groupVictim])
					assert.Zero(t, ej.miss[groupVictim]+ej.stale[groupVictim])
					assert.False(t, s.Live(victimIndex), "probes of the dead server failed; it stays ejected")
				} else {
					k := l.phaseSum(t, "killed", nil)
					assert.Zero(t, k.ok[groupVictim], "nothing answers for a dead server")
					assert.Positive(t, k.nerr(groupVictim))
				}
				st := s.Stats()
				assert.Equal(t, int64(errs), st.ForwardError, "forward_error counts every error reply")
				wantEjects := int64(0)
				if eject {
					wantEjects = 1
				}
				assert.Equal(t, wantEjects, st.ServerEjects)

				delete(counters, victimIndex)
				requireBackendConns(t, s, counters, func(int) int64 { return 1 })
				shutdownAndCheck(t, s, l, counters)
			})
		}
	}
}

// stopVictimUnderLoad starts three backends and a proxy with timeout,
// puts it under load, and stops the victim backend with SIGSTOP (resumed
// at cleanup). The load is in its phase "stopped".
func stopVictimUnderLoad(t *testing.T, kind protocol.Kind, timeout time.Duration) (*proxy.Server, backend, map[int]*connCounter, *load) {
	t.Helper()
	bs := startEqualBackends(t, kind, 3)
	s, addr := startProxy(t, kind, bs, func(c *proxy.Config) { c.Backend.Timeout = timeout })
	victim := backendAt(t, s, bs, victimIndex)
	counters := countersFor(t, kind, s, bs)
	l := startLoad(t, kind, addr, onVictim(s), timeout+hangLimit, "healthy")
	time.Sleep(warmUp)

	l.next("stopping")
	l.settle(t)
	require.NoError(t, syscall.Kill(victim.PID, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(victim.PID, syscall.SIGCONT) })
	require.Eventually(t, func() bool { return processState(victim.PID) == "T" }, 5*time.Second, time.Millisecond)
	l.next("stopped")
	return s, victim, counters, l
}

// TestFaultStopBackend stops one of three backends with SIGSTOP under load,
// then resumes it with SIGCONT. While it is stopped its requests fail with
// "Connection timed out" within the pool's Timeout, and clients that do not
// use its keys see no slowdown; once it resumes it serves again without
// anyone's help, and the connections that timed out are gone on both
// sides.
func TestFaultStopBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("fault matrix under continuous load: not part of the -short loop")
	}
	for _, kind := range faultKinds {
		t.Run(kind.String(), func(t *testing.T) {
			t.Cleanup(func() { verifyNoLeaks(t) })
			const timeout = 500 * time.Millisecond
			s, victim, counters, l := stopVictimUnderLoad(t, kind, timeout)
			time.Sleep(2 * timeout)

			l.next("resuming")
			l.settle(t)
			require.NoError(t, syscall.Kill(victim.PID, syscall.SIGCONT))
			resumed := time.Now()
			recovered := l.waitVictimOK(t, timeout+hangLimit)
			t.Logf("recovered %v after SIGCONT", recovered.Sub(resumed).Round(time.Millisecond))
			l.next("recovered")
			time.Sleep(watch)
			l.stopClients()

			errs := l.report(t, timeout+latencySlack)
			healthy := l.phaseSum(t, "healthy", nil)
			assert.Zero(t, healthy.nerr(groupVictim))
			stopped := l.phaseSum(t, "stopped", nil)
			assert.Zero(t, stopped.ok[groupVictim], "nothing answers for a stopped server")
			assert.Positive(t, stopped.nerr(groupVictim))
			total := l.total()
			assertErrorsIn(t, &total, groupVictim, "Connection timed out")
			unaffected := l.phaseSum(t, "stopped", liveOnly)
			assert.Less(t, unaffected.maxLat, timeout, "clients that avoid the stopped server are not held up by it")
			rec := l.phaseSum(t, "recovered", nil)
			assert.Zero(t, rec.nerr(groupVictim))
			assert.Positive(t, rec.ok[groupVictim])
			assert.Zero(t, rec.miss[groupVictim]+rec.stale[groupVictim])
			assert.Less(t, recovered.Sub(resumed), timeout+latencySlack, "time to recover after SIGCONT")
			st := s.Stats()
			assert.Equal(t, int64(errs), st.ForwardError)
			assert.Positive(t, st.Servers[victimIndex].ServerTimedOut)

			requireBackendConns(t, s, counters, func(int) int64 { return 1 })
			shutdownAndCheck(t, s, l, counters)
		})
	}
}

// TestFaultRestartBackend kills one of three backends and starts a new
// one on its port. Without auto_eject_hosts the next request to it
// reconnects; with it, the pool's probe reinstates it within
// RetryTimeout. Either way its keys are served by the new server again
// with no operator action, and the time that takes is bounded.
func TestFaultRestartBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("fault matrix under continuous load: not part of the -short loop")
	}
	for _, kind := range faultKinds {
		for _, eject := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/eject=%v", kind, eject), func(t *testing.T) {
				t.Cleanup(func() { verifyNoLeaks(t) })
				const (
					timeout = time.Second
					retry   = 300 * time.Millisecond
				)
				bs := startEqualBackends(t, kind, 3)
				s, addr := startProxy(t, kind, bs, func(c *proxy.Config) {
					c.Backend.Timeout = timeout
					c.Backend.AutoEject = eject
					c.Backend.FailureLimit = 2
					c.Backend.RetryTimeout = retry
				})
				victim := backendAt(t, s, bs, victimIndex)
				counters := countersFor(t, kind, s, bs)
				isVictim := onVictim(s)
				l := startLoad(t, kind, addr, isVictim, timeout+hangLimit, "healthy")
				time.Sleep(warmUp)

				l.next("killing")
				l.settle(t)
				require.NoError(t, syscall.Kill(victim.PID, syscall.SIGKILL))
				waitDead(t, victim.Server)
				l.next("down")
				if eject {
					require.Eventually(t, func() bool { return !s.Live(victimIndex) }, 5*time.Second, time.Millisecond)
				}
				time.Sleep(200 * time.Millisecond)

				l.next("restarting")
				// Batches sent while the server was down are answered
				// (with errors) before it restarts: one that reached the
				// proxy late could otherwise be served by the new server
				// and counted as an answer from the dead one.
				l.settle(t)
				var fresh *testserver.Server
				if kind == protocol.Redis {
					fresh = testserver.StartRedis(t, testserver.RedisOptions{Port: victim.Port})
				} else {
					fresh = testserver.StartMemcached(t, testserver.MemcachedOptions{Port: victim.Port})
				}
				restarted := l.next("restarted")
				// A new memcached counts its listener as the old one did.
				counters[victimIndex] = newConnCounter(t, kind, fresh.Addr, counters[victimIndex].base)
				var recovered time.Time
				if eject {
					require.Eventually(t, func() bool { return s.Live(victimIndex) }, retry+hangLimit, time.Millisecond)
					recovered = time.Now()
				} else {
					recovered = l.waitVictimOK(t, hangLimit)
				}
				took := recovered.Sub(restarted)
				t.Logf("serving from the new server %v after it started", took.Round(time.Millisecond))
				l.next("recovered")
				time.Sleep(watch)
				l.stopClients()

				errs := l.report(t, timeout+latencySlack)
				healthy, total := l.phaseSum(t, "healthy", nil), l.total()
				assert.Zero(t, healthy.nerr(groupVictim))
				assertErrorsIn(t, &total, groupVictim, killErrors...)
				if !eject {
					down := l.phaseSum(t, "down", nil)
					assert.Zero(t, down.ok[groupVictim], "nothing answers for a dead server")
				}
				rec := l.phaseSum(t, "recovered", nil)
				assert.Zero(t, rec.nerr(groupVictim))
				assert.Positive(t, rec.ok[groupVictim])
				assert.Zero(t, rec.miss[groupVictim]+rec.stale[groupVictim])
				bound := latencySlack
				if eject {
					bound += retry
				}
				assert.Less(t, took, bound, "time until the new server serves")
				assert.Equal(t, int64(errs), s.Stats().ForwardError)

				// The victim's keys live on the new server again.
				var key string
				for _, w := range l.workers {
					for _, k := range w.keys {
						if key == "" && isVictim(k) {
							key = k
						}
					}
				}
				require.NotEmpty(t, key)
				var got string
				if kind == protocol.Redis {
					c := testserver.DialRedis(t, fresh.Addr)
					v, err := c.Do("GET", key)
					require.NoError(t, err)
					require.NoError(t, c.Close())
					got = v
				} else {
					c := testserver.DialMemcache(t, fresh.Addr)
					vals, err := c.Get([]byte(key))
					require.NoError(t, err)
					require.NoError(t, c.Close())
					got = string(vals[key])
				}
				assert.True(t, strings.HasPrefix(got, key+":"), "%s on the new server: %q", key, got)

				requireBackendConns(t, s, counters, func(int) int64 { return 1 })
				shutdownAndCheck(t, s, l, counters)
			})
		}
	}
}

// TestFaultMisbehavingBackend puts a fake backend beside two real ones and
// makes it misbehave under load: answer garbage, close in the middle of a
// reply, answer later than the pool's Timeout, or answer slowly but in
// time. The affected requests get an error reply (none for the slow but
// timely one), the other servers' keys none, every client connection stays
// open, and once the fake behaves again the pool reconnects to it by
// itself. The proxy is then closed with Close.
func TestFaultMisbehavingBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("fault matrix under continuous load: not part of the -short loop")
	}
	const timeout = 400 * time.Millisecond
	modes := []struct {
		mode    fakeMode
		delay   time.Duration
		fault   time.Duration // how long the fault lasts
		wantErr []string      // the error replies it causes; none: it causes none
	}{
		{mode: fakeGarbage, fault: 400 * time.Millisecond, wantErr: []string{"Invalid argument"}},
		{mode: fakeCutReply, fault: 400 * time.Millisecond, wantErr: []string{"unknown", "Connection reset by peer", "Broken pipe"}},
		// Far slower than the timeout, so that a timer that fires late on a
		// loaded machine does not let a reply in first.
		{mode: fakeSlow, delay: 3 * timeout, fault: 2 * timeout, wantErr: []string{"Connection timed out"}},
		{mode: fakeSlow, delay: timeout / 8, fault: 400 * time.Millisecond},
	}
	for _, kind := range faultKinds {
		for _, tt := range modes {
			t.Run(fmt.Sprintf("%v/%v %v", kind, tt.mode, tt.delay), func(t *testing.T) {
				t.Cleanup(func() { verifyNoLeaks(t) })
				fake := startFakeBackend(t, kind)
				bs := append(startEqualBackends(t, kind, 2), backend{entry: shard.Server{Addr: fake.Addr, Name: "fake", Weight: 1}})
				s, addr := startProxy(t, kind, bs, func(c *proxy.Config) { c.Backend.Timeout = timeout })
				fakeIndex := -1
				for i := range s.Ring().Len() {
					if s.Ring().Server(i).Addr == fake.Addr {
						fakeIndex = i
					}
				}
				counters := countersFor(t, kind, s, bs)
				ring := s.Ring()
				l := startLoad(t, kind, addr, func(k string) bool { return ring.PickString(k) == fakeIndex }, timeout+hangLimit, "healthy")
				time.Sleep(warmUp)

				l.next("breaking")
				l.settle(t)
				dialled := fake.accepted.Load()
				fake.setMode(tt.mode, tt.delay)
				l.next("faulty")
				time.Sleep(tt.fault)
				l.next("mending")
				l.settle(t)
				fake.setMode(fakeNormal, 0)
				mended := l.next("normal again")
				if tt.wantErr != nil {
					recovered := l.waitVictimOK(t, timeout+hangLimit)
					t.Logf("served again %v after the fake behaved", recovered.Sub(mended).Round(time.Millisecond))
					l.next("recovered")
				}
				time.Sleep(watch)
				l.stopClients()

				errs := l.report(t, timeout+latencySlack)
				healthy := l.phaseSum(t, "healthy", nil)
				assert.Zero(t, healthy.nerr(groupVictim))
				faulty := l.phaseSum(t, "faulty", nil)
				st := s.Stats()
				if tt.wantErr != nil {
					assert.Positive(t, faulty.nerr(groupVictim))
					total := l.total()
					assertErrorsIn(t, &total, groupVictim, tt.wantErr...)
					if tt.mode != fakeCutReply { // there, SETs before the cut GET succeed
						assert.Zero(t, faulty.ok[groupVictim])
					}
					rec := l.phaseSum(t, "recovered", nil)
					assert.Zero(t, rec.nerr(groupVictim))
					assert.Positive(t, rec.ok[groupVictim])
					t.Logf("the pool opened %d connections to the fake during and after the fault", fake.accepted.Load()-dialled)
					assert.Greater(t, fake.accepted.Load()-dialled, int64(1), "the pool reconnected after the failures")
				} else {
					assert.Zero(t, errs)
					assert.Positive(t, faulty.ok[groupVictim])
					slow := l.phaseSum(t, "faulty", mixed)
					assert.GreaterOrEqual(t, slow.maxLat, tt.delay, "the slow answers were waited for")
					assert.Zero(t, st.Servers[fakeIndex].ServerTimedOut)
				}
				assert.Equal(t, int64(errs), st.ForwardError)
				assert.Equal(t, int64(loadWorkers), st.ClientConnections, "every client connection stayed open")
				assert.Zero(t, st.ClientErr)

				require.Eventually(t, func() bool {
					return fake.open.Load() == s.Stats().Servers[fakeIndex].ServerConnections
				}, 5*time.Second, 10*time.Millisecond, "the fake has as many connections open as the proxy counts")
				requireBackendConns(t, s, counters, func(int) int64 { return 1 })
				require.NoError(t, s.Close())
				l.closeClients()
				requireBackendConns(t, s, counters, func(int) int64 { return 0 })
				require.Eventually(t, func() bool { return fake.open.Load() == 0 }, 5*time.Second, 10*time.Millisecond)
				assert.Zero(t, s.Stats().Servers[fakeIndex].ServerConnections)
			})
		}
	}
}

// TestFaultShutdownUnderLoad shuts the proxy down while the clients keep
// pipelining and one of three backends is stopped with SIGSTOP. Shutdown
// returns with no error within twice the pool's Timeout plus slack: a
// client's batch in progress is answered (error replies for the stopped
// server's keys, once they time out), and so is what arrives within 100 ms
// of its end, which the proxy cannot tell from requests sent before
// Shutdown; then every client connection closes cleanly (EOF). Only a
// batch sent after Shutdown began may be cut short: its remaining
// requests are not forwarded. Once the backend resumes, no backend counts
// a connection from the proxy.
func TestFaultShutdownUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("fault matrix under continuous load: not part of the -short loop")
	}
	for _, kind := range faultKinds {
		t.Run(kind.String(), func(t *testing.T) {
			t.Cleanup(func() { verifyNoLeaks(t) })
			const timeout = 500 * time.Millisecond
			s, victim, counters, l := stopVictimUnderLoad(t, kind, timeout)
			time.Sleep(timeout / 2)

			l.next("shutting down")
			l.closing.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			require.NoError(t, s.Shutdown(ctx))
			took := time.Since(start)
			t.Logf("Shutdown under load, with a stopped backend, took %v", took.Round(time.Millisecond))
			assert.Less(t, took, 2*timeout+latencySlack)
			l.stopClients()

			l.report(t, timeout+latencySlack)
			for _, w := range l.workers {
				if !assert.False(t, w.closedAt.IsZero(), "client %d: the proxy closed the connection cleanly", w.id) {
					continue
				}
				if w.closedAfter > 0 {
					t.Logf("client %d: closed after %d replies of a batch sent %v after Shutdown began",
						w.id, w.closedAfter, w.closedBatch.Sub(start).Round(time.Millisecond))
					assert.True(t, w.closedBatch.After(start), "client %d: a batch sent before Shutdown was cut short", w.id)
				}
			}
			total := l.total()
			assertErrorsIn(t, &total, groupVictim, "Connection timed out")
			st := s.Stats()
			assert.Zero(t, st.ClientConnections)
			assert.Zero(t, st.ClientErr)

			require.NoError(t, syscall.Kill(victim.PID, syscall.SIGCONT))
			l.closeClients()
			requireBackendConns(t, s, counters, func(int) int64 { return 0 })
		})
	}
}

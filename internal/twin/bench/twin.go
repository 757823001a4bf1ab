package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// liveTwin is a local twin started the way `apgstack up` starts it.
type liveTwin struct {
	cfg    apgstack.Config
	dir    string
	secret secretstore.DatabaseSecret
	once   sync.Once
	// ready is the time from the start of up to the first successful TLS query.
	ready time.Duration
}

// upTwin brings a new twin of the stage up in work/name, as `apgstack up` does (the real binary
// re-executed as the background supervisor), and waits for the first successful query through
// the writer endpoint over TLS with verify-full.
func (r *runner) upTwin(ctx context.Context, stage, name string) (*liveTwin, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	cfg := r.cfg
	cfg.Environment.Stage = stage
	cfg.Database.Port, cfg.Target.Local.ReaderPort = ports[0], ports[1]
	tw := &liveTwin{cfg: cfg, dir: filepath.Join(r.work, name)}
	cfg.Target.Local.StateDir = tw.dir
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench configuration: %w", err)
	}
	r.defer_(tw.close)
	start := time.Now()
	if _, err := twin.Up(ctx, twin.Options{Config: cfg, StateDir: tw.dir, Exe: r.o.Exe, Log: r.log}); err != nil {
		return tw, fmt.Errorf("up (%s): %w", stage, err)
	}
	store, err := secretstore.Open(statedir.Layout{Root: tw.dir}.SecretsDir())
	if err != nil {
		return tw, err
	}
	if tw.secret, err = store.GetDatabase(bestpractice.SecretName(stage, cfg.Database.StackName), secretstore.Current); err != nil {
		return tw, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := tw.query(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return tw, fmt.Errorf("first TLS query through the writer endpoint: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tw.ready = time.Since(start)
	return tw, nil
}

// connConfig is a connection through the writer endpoint (or another port of the twin) as the
// master user, TLS verify-full against the twin's CA.
func (tw *liveTwin) connConfig(port int) (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d sslmode=verify-full sslrootcert=%s connect_timeout=5 application_name=apgstack-bench",
		port, statedir.Layout{Root: tw.dir}.CABundle()))
	if err != nil {
		return nil, err
	}
	cc.User, cc.Database, cc.Password = tw.secret.Username, tw.secret.DBName, tw.secret.Password
	return cc, nil
}

func (tw *liveTwin) connect(ctx context.Context, port int) (*pgx.Conn, error) {
	cc, err := tw.connConfig(port)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cc)
}

// query runs one query through the writer endpoint.
func (tw *liveTwin) query(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := tw.connect(cctx, tw.cfg.Database.Port)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var ssl bool
	if err := conn.QueryRow(cctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
		return err
	}
	if !ssl {
		return fmt.Errorf("the connection is not encrypted")
	}
	return nil
}

func (tw *liveTwin) client() *api.Client {
	return api.NewClient(statedir.Layout{Root: tw.dir}.Socket())
}

func (tw *liveTwin) status(ctx context.Context) (api.Status, error) {
	return tw.client().Status(ctx)
}

// close stops the twin as `apgstack down` does and deletes its state directory.
func (tw *liveTwin) close() {
	tw.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _ = twin.Down(ctx, tw.dir)
		_ = os.RemoveAll(tw.dir)
	})
}

// whole reports whether the twin is back to its full shape: ready, one running writer, every
// reader running and promotable (in prod: in sync), not degraded.
func whole(st api.Status, stage string) (bool, string) {
	if st.Phase != api.PhaseReady {
		return false, "phase " + st.Phase
	}
	writers, readers := 0, 0
	for _, in := range st.Instances {
		if in.State != api.StateRunning {
			return false, in.Name + " " + in.State
		}
		switch in.Role {
		case api.RoleWriter:
			writers++
		case api.RoleReader:
			readers++
			if !in.Promotable {
				return false, in.Name + " not promotable yet"
			}
		}
	}
	if writers != 1 {
		return false, fmt.Sprintf("%d writers", writers)
	}
	if bestpractice.Stage(stage).Reader && readers == 0 {
		return false, "no reader"
	}
	if st.Degraded {
		return false, "degraded"
	}
	return true, ""
}

// waitWhole waits until the twin is whole again.
func (tw *liveTwin) waitWhole(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	why := ""
	for {
		st, err := tw.status(ctx)
		if err == nil {
			var ok bool
			if ok, why = whole(st, tw.cfg.Environment.Stage); ok {
				return nil
			}
		} else {
			why = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the twin is not whole again after %s: %s", limit, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writer returns the writer instance of a status.
func writerOf(st api.Status) (api.Instance, bool) {
	for _, in := range st.Instances {
		if in.Role == api.RoleWriter {
			return in, true
		}
	}
	return api.Instance{}, false
}

func readerOf(st api.Status) (api.Instance, bool) {
	for _, in := range st.Instances {
		if in.Role == api.RoleReader {
			return in, true
		}
	}
	return api.Instance{}, false
}

// prodTwin returns the prod twin the endpoint, switchover and failover scenarios share, whole;
// a twin that cannot be made whole again is replaced by a new one.
func (r *runner) prodTwin(ctx context.Context) (*liveTwin, error) {
	if r.prod != nil {
		if err := r.prod.waitWhole(ctx, r.s.wholeTimeout); err == nil {
			return r.prod, nil
		} else {
			r.progress("prod twin: %v; starting a new one", err)
		}
		r.closeProd()
	}
	r.progress("prod twin: up")
	r.prodCount++
	tw, err := r.upTwin(ctx, apgstack.StageProd, fmt.Sprintf("prod%d", r.prodCount))
	if err != nil {
		if tw != nil {
			tw.close()
		}
		return nil, err
	}
	if err := tw.waitWhole(ctx, r.s.wholeTimeout); err != nil {
		tw.close()
		return nil, err
	}
	r.prod = tw
	return tw, nil
}

func (r *runner) closeProd() {
	if r.prod != nil {
		r.prod.close()
		r.prod = nil
	}
}

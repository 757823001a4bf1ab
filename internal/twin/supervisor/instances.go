// The instances: ports, configuration files, starting the writer and the readers (standby
// setup, replication slots, streaming), restarting one that stopped.

package supervisor

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
)

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// assignPorts gives each instance of list an internal loopback port: the remembered one while it
// is free, else a new free one.
func (s *Supervisor) assignPorts(list []InstanceState) error {
	cfg := s.cfg()
	taken := map[int]bool{cfg.Database.Port: true, cfg.ReaderPort(): true}
	for i := range list {
		in := &list[i]
		if in.Port != 0 && !taken[in.Port] && (portFree(in.Port) || instance.StalePID(filepath.Join(s.layout.InstanceDir(in.Name), "data")) != 0) {
			taken[in.Port] = true
			continue
		}
		for range 20 {
			p, err := freePort()
			if err != nil {
				return err
			}
			if !taken[p] {
				in.Port = p
				taken[p] = true
				break
			}
		}
	}
	return nil
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", addr(p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Supervisor) newInstance(in InstanceState) *instance.Instance {
	return &instance.Instance{Name: in.Name, Dir: s.layout.InstanceDir(in.Name), Port: in.Port, Bin: s.bin, Acct: s.acct, Log: s.log}
}

// writeConfig renders the configuration files into the data directory and installs the TLS files.
func (s *Supervisor) writeConfig(i *instance.Instance, primary *postgres.Primary, cert, key []byte) error {
	if err := i.WriteTLS(cert, key); err != nil {
		return err
	}
	plan := s.topo.now().plan
	conf := postgres.Conf(plan, postgres.Server{Name: i.Name, Port: i.Port, SocketDir: i.SocketDir(),
		CertFile: i.CertFile(), KeyFile: i.KeyFile(), Primary: primary, Extra: s.opts.ExtraSettings})
	users := []string{s.acct.Name}
	if cur := currentUser(); cur != "" {
		users = append(users, cur)
	}
	for name, data := range map[string]string{"postgresql.conf": conf, "pg_hba.conf": postgres.HBA(plan.ForceSSL), "pg_ident.conf": postgres.Ident(users)} {
		if err := i.WriteFile(name, []byte(data)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Supervisor) checkMajor(i *instance.Instance) error {
	m, err := i.DataMajor()
	if err != nil {
		return fmt.Errorf("instance %s: %w", i.Name, err)
	}
	if m != s.bin.Major {
		return fmt.Errorf("instance %s: its data directory %s was created by PostgreSQL %d, but the server found is PostgreSQL %s: install PostgreSQL %d, or start afresh with `apgstack down --delete`",
			i.Name, i.DataDir(), m, s.bin.Version, m)
	}
	return nil
}

func (s *Supervisor) startWriter(ctx context.Context, in InstanceState, cert, key []byte) (*instance.Instance, error) {
	w := s.newInstance(in)
	if err := w.Prepare(); err != nil {
		return nil, err
	}
	if !w.Initialized() {
		s.progress("creating the writer %s (initdb, data checksums, SCRAM)", w.Name)
		if err := w.InitDB(ctx); err != nil {
			return nil, err
		}
	} else if err := s.checkMajor(w); err != nil {
		return nil, err
	}
	if err := s.writeConfig(w, nil, cert, key); err != nil {
		return nil, err
	}
	s.progress("starting the writer %s (PostgreSQL %s on 127.0.0.1:%d)", w.Name, s.bin.Version, w.Port)
	sctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	s.addInstance(w)
	if s.adopt(sctx, w, false) {
		return w, nil
	}
	if err := w.Start(sctx); err != nil {
		return nil, err
	}
	return w, nil
}

func (s *Supervisor) startReader(ctx context.Context, in InstanceState, w *instance.Instance, cert, key []byte) error {
	r := s.newInstance(in)
	if err := r.Prepare(); err != nil {
		return err
	}
	if !r.Initialized() {
		s.progress("creating the reader %s (base backup of %s, replication slot %s)", r.Name, w.Name, r.Name)
		if err := w.EnsureSlot(ctx, r.Name); err != nil {
			return err
		}
		if err := r.BaseBackup(ctx, w, r.Name); err != nil {
			return err
		}
	} else if err := s.checkMajor(r); err != nil {
		return err
	}
	if err := w.EnsureSlot(ctx, r.Name); err != nil {
		return err
	}
	if err := s.writeConfig(r, &postgres.Primary{SocketDir: w.SocketDir(), Port: w.Port, Slot: r.Name}, cert, key); err != nil {
		return err
	}
	s.progress("starting the reader %s (hot standby on 127.0.0.1:%d)", r.Name, r.Port)
	sctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	s.addInstance(r)
	if !s.adopt(sctx, r, true) {
		if err := r.StartStandby(sctx); err != nil {
			return err
		}
	}
	return w.WaitStreaming(sctx, r.Name)
}

// adopt takes over i when a supervisor that died left it serving in its role (a standby or
// not), so that the sessions connected to its port go on; the configuration just written is
// reloaded, and a server that would need a restart for it is restarted instead (Start stops it).
func (s *Supervisor) adopt(ctx context.Context, i *instance.Instance, standby bool) bool {
	ok, err := i.Adopt(ctx, standby)
	if err != nil {
		s.log.Warn("adopt a server left running", "instance", i.Name, "err", err)
	}
	if !ok {
		return false
	}
	pending, err := i.PendingRestart(ctx)
	if err != nil || len(pending) > 0 {
		s.log.Info("a server left running needs a restart for its configuration", "instance", i.Name, "settings", pending, "err", err)
		return false
	}
	s.noteAdopted(i.Name)
	s.progress("instance %s had kept serving (pid %d): adopted with its sessions", i.Name, i.PID())
	return true
}

// restartInstance starts a server that stopped, with its data (a reader resumes streaming from
// its slot), and records the recovery.
func (s *Supervisor) restartInstance(ctx context.Context, name string) error {
	i := s.topo.now().instances[name]
	if i == nil {
		return fmt.Errorf("no instance %s", name)
	}
	sctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	if err := i.Start(sctx); err != nil {
		return err
	}
	s.clearCondition(name)
	s.event(api.Event{SourceType: bestpractice.SourceInstance, SourceID: name, Category: "recovery", Message: "instance " + name + " restarted"})
	return nil
}

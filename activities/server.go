package activities

import (
	"context"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
)

// Server is what the steps need of one MySQL server. mysqladmin.Client is the real one;
// tests hand Activities a Dialer that returns fakes.
type Server interface {
	Dialect() flavor.Flavor
	Ping(ctx context.Context) error
	ReplicaStatus(ctx context.Context) (*mysqladmin.ReplicaStatus, error)
	Executed(ctx context.Context) (string, error)
	WaitExecuted(ctx context.Context, gtids string, timeout time.Duration) error
	ReadOnly(ctx context.Context) (readOnly, superReadOnly bool, err error)
	SetReadOnly(ctx context.Context, on bool) error
	SetSemiSyncPrimary(ctx context.Context, on bool) error
	SetSemiSyncTimeout(ctx context.Context, ms uint64) error
	SetAcks(ctx context.Context, acks bool) error
	PointAt(ctx context.Context, src flavor.Source, wasPrimary, acks bool) error
	StartReplica(ctx context.Context) error
	CutReceiving(ctx context.Context) error
	StopReceiving(ctx context.Context) error
	RestartReplica(ctx context.Context) error
	StopReplica(ctx context.Context) error
	ServerID(ctx context.Context) (uint32, error)
	SetServerID(ctx context.Context, id uint32) error
	StopAndResetReplication(ctx context.Context) error
	Processlist(ctx context.Context) ([]mysqladmin.Process, error)
	EndClientSessions(ctx context.Context, excluded map[string]bool) (int, error)
	Fence(ctx context.Context, excluded map[string]bool) (int, error)
	HeartbeatRows(ctx context.Context) (map[uint32]string, error)
	HeartbeatLag(ctx context.Context) (time.Duration, bool, error)
	Close() error
}

// Dialer opens a Server at addr; no connection is made until it is used.
type Dialer func(addr string, f flavor.Flavor, o mysqladmin.Options) (Server, error)

func dialMySQL(addr string, f flavor.Flavor, o mysqladmin.Options) (Server, error) {
	return mysqladmin.Open(addr, f, o)
}

var _ Server = (*mysqladmin.Client)(nil)

// Command loadgen writes through the sandbox's local HAProxy writer port as a pooled
// application client, and reports every outage window it saw and any acked write missing
// on the current primary (read back through the writer). --acked FILE saves every acked
// id; --verify FILE[,FILE...] (no load) then checks those ids on every member of the
// cluster directly: that, not the load run, is the claim that no acked write was lost.
//
//	go run ./deploy/local/loadgen --env deploy/local/state/env --duration 15s --acked run.acked
//	go run ./deploy/local/loadgen --env deploy/local/state/env --verify run.acked
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/baton-db/baton/internal/envfile"
	"github.com/baton-db/baton/internal/loadgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	envFile := flag.String("env", "deploy/local/state/env", "the sandbox's env file")
	duration := flag.Duration("duration", 15*time.Second, "how long to write")
	rate := flag.Int("rate", 200, "inserts per second")
	ackedFile := flag.String("acked", "", "after the run, write every acked id to this `file`, one a line")
	verifyFiles := flag.String("verify", "", "no load: check the acked ids in these comma-separated `files` on every member of MYSQL_NODES")
	allowDown := flag.Bool("allow-down", false, "with --verify: a member that does not answer is reported but does not fail the check")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	env, err := envfile.Read(*envFile)
	if err != nil {
		return err
	}
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	if *verifyFiles != "" {
		if *ackedFile != "" {
			return fmt.Errorf("--acked is for a load run; --verify runs no load")
		}
		return verify(env, splitFiles(*verifyFiles), *allowDown)
	}
	if *allowDown {
		return fmt.Errorf("--allow-down goes with --verify")
	}
	sec, err := envfile.Read(env["SECRETS_FILE"])
	if err != nil {
		return err
	}
	open := func(user, pass string) *sql.DB {
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr = user, pass, "tcp", env["LOCAL_WRITER_ADDR"]
		c.Timeout, c.ReadTimeout, c.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
		conn, _ := mysql.NewConnector(c)
		return sql.OpenDB(conn)
	}
	db := open(sec["MYSQL_APP_USER"], sec["MYSQL_APP_PASSWORD"])
	db.SetMaxOpenConns(16)
	defer db.Close()
	if _, err := db.Exec(loadgen.Schema); err != nil {
		return fmt.Errorf("create %s: %w", loadgen.Table, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	l := loadgen.Start(db, *rate)
	fmt.Printf("loadgen: %d inserts/s through %s for %s\n", *rate, env["LOCAL_WRITER_ADDR"], *duration)
	select {
	case <-ctx.Done():
	case <-time.After(*duration):
	}
	l.Stop()
	acked := l.Acked()
	if *ackedFile != "" { // first, so that --verify has the ids whatever happens below
		if err := writeAcked(*ackedFile, acked); err != nil {
			return err
		}
	}
	gap, from := l.LongestGap()
	fmt.Printf("loadgen: %s\n", l)
	fmt.Printf("loadgen: client-observed write outage %s, from %s to %s\n", gap.Round(time.Millisecond),
		from.Format("15:04:05.000"), from.Add(gap).Format("15:04:05.000"))
	if *ackedFile != "" {
		fmt.Printf("loadgen: wrote the %d acked ids to %s\n", len(acked), *ackedFile)
	}
	miss, err := loadgen.Missing(context.Background(), db, acked, replicationWait)
	if err != nil {
		return fmt.Errorf("read back the acked writes through the writer %s: %w", env["LOCAL_WRITER_ADDR"], err)
	}
	fmt.Printf("loadgen: acked writes missing on the current primary (read through the writer %s): %d of %d; every member is checked by --verify\n",
		env["LOCAL_WRITER_ADDR"], len(miss), len(acked))
	if len(miss) > 0 {
		return fmt.Errorf("%d of %d acked writes missing on the current primary", len(miss), len(acked))
	}
	return nil
}

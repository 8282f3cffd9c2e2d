// Command loadgen writes through the sandbox's local HAProxy writer port as a pooled
// application client, and reports every outage window it saw and any acked write lost.
//
//	go run ./deploy/local/loadgen --env deploy/local/state/env --duration 15s
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
	flag.Parse()
	env, err := envfile.Read(*envFile)
	if err != nil {
		return err
	}
	sec, err := envfile.Read(env["SECRETS_FILE"])
	if err != nil {
		return err
	}
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
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
	gap, from := l.LongestGap()
	fmt.Printf("loadgen: %s\n", l)
	fmt.Printf("loadgen: client-observed write outage %s, from %s to %s\n", gap.Round(time.Millisecond),
		from.Format("15:04:05.000"), from.Add(gap).Format("15:04:05.000"))
	miss, err := loadgen.Missing(context.Background(), db, l.Acked(), 10*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("loadgen: acked writes lost on the current primary: %d of %d\n", len(miss), len(l.Acked()))
	if len(miss) > 0 {
		return fmt.Errorf("%d acked writes lost", len(miss))
	}
	return nil
}

package twintest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/twintest"
)

// A prod twin (writer and synchronous reader): write, crash the writer, see the reader take
// over, and read every row back through the same writer endpoint. In a test, twintest.Start(t,
// ...) does the start and the stop.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tw, err := twintest.New(ctx, twintest.Options{Stage: "prod"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tw.Close()
	dsn, err := tw.DSN(false, twintest.Master)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE notes (id int PRIMARY KEY); INSERT INTO notes SELECT generate_series(1, 3)"); err != nil {
		fmt.Println(err)
		return
	}
	conn.Close(ctx)

	old, _ := tw.Writer(ctx)
	if err := tw.Inject(ctx, twintest.CrashWriter, 0); err != nil {
		fmt.Println(err)
		return
	}
	now, err := tw.WaitWriter(ctx, old)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := tw.WaitWhole(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("the writer changed:", now != old)

	conn, err = pgx.Connect(ctx, dsn)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("rows after the failover:", n)
	// Output:
	// the writer changed: true
	// rows after the failover: 3
}

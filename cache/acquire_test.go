package cache

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Acquire takes a free lock; on a held one it sleeps until the holder lets go and then
// returns without the lock; a cancelled wait returns at once.
func TestAcquire(t *testing.T) {
	c := openTemp(t)
	k := baseKey()
	first, held, err := c.Acquire(context.Background(), k)
	if err != nil || !held {
		t.Fatalf("Acquire of a free lock: held %v, %v", held, err)
	}

	const hold = 150 * time.Millisecond
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(hold)
		released <- time.Now()
		first()
	}()
	start := time.Now()
	again, held, err := c.Acquire(context.Background(), k)
	woke := time.Now()
	if err != nil || held || again != nil {
		t.Fatalf("Acquire of a held lock: held %v, unlock %v, %v", held, again != nil, err)
	}
	rel := <-released
	if woke.Before(rel) {
		t.Fatalf("Acquire returned %v before the holder let go", rel.Sub(woke))
	}
	if d := woke.Sub(rel); d > time.Second {
		t.Fatalf("Acquire woke %v after the holder let go", d)
	}
	t.Logf("waited %v, woke %v after the release", woke.Sub(start), woke.Sub(rel))

	// Now free: taken again.
	unlock, held, err := c.Acquire(context.Background(), k)
	if err != nil || !held {
		t.Fatalf("Acquire after the release: held %v, %v", held, err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, held, err := c.Acquire(ctx, k); held || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with a deadline on a held lock: held %v, %v", held, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a cancelled Acquire took %v", d)
	}
}

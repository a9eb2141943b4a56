package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/securestore"
)

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// RenewCmd redeems refresh tokens so their inactivity window starts again.
type RenewCmd struct {
	All     bool          `help:"Renew every saved profile."`
	Timeout time.Duration `default:"30s" help:"Bound on each profile's renewal."`
}

func (r *RenewCmd) Run(ctx context.Context, a *App) error {
	ctx = securestore.WithWriteRequired(ctx) // renew is the write: the Key Vault store always writes
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	names := []string{a.profileName("")}
	if r.All {
		if names, err = dir.List(); err != nil {
			return configError("%w", err)
		}
		if len(names) == 0 {
			return &failure.Error{Kind: failure.ConsentNeeded, Message: "no saved profiles to renew"}
		}
	}
	var worst error
	for _, name := range names {
		req, _, err := a.tokenRequest(name, "", nil, TokenFlags{ForceRefresh: true})
		if err == nil {
			_, err = a.fetch(ctx, req, r.Timeout)
		}
		if err != nil {
			fmt.Fprintf(a.Stdout, "%s: renewal failed: %s\n", name, shown(err.Error()))
			a.showError(err, a.remedy(err))
			if worst == nil || exitCode(err) == exitConsent {
				worst = err
			}
			continue
		}
		p, err := dir.Load(name)
		switch {
		case errors.Is(err, profile.ErrNotFound):
			// CI mode or settings given by flags: no saved rotation date to count from.
			fmt.Fprintf(a.Stdout, "%s: renewed (not saved on this machine: no days left to count)\n", name)
			continue
		case err != nil:
			fmt.Fprintf(a.Stdout, "%s: renewed\n", name)
			a.warnf("%v", err)
			continue
		}
		fmt.Fprintf(a.Stdout, "%s: renewed, %d days left\n", name, p.DaysLeft(a.Now()))
	}
	if worst != nil {
		return silent{exitCode(worst)}
	}
	return nil
}

// LogoutCmd forgets a profile.
type LogoutCmd struct {
	All          bool `help:"Forget every saved profile (asks on a terminal; elsewhere needs --yes)."`
	Yes          bool `help:"Do not ask for confirmation."`
	DeleteSecret bool `name:"delete-secret" help:"With the azure-keyvault store: also delete the vault's secret (soft delete; other machines lose the token)."`
}

func (l *LogoutCmd) Run(a *App) error {
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	names := []string{a.profileName("")}
	if l.All {
		if names, err = dir.List(); err != nil {
			return configError("%w", err)
		}
		if len(names) > 0 && !l.Yes {
			if err := a.confirm(fmt.Sprintf("Forget every saved profile (%s), its refresh token and its cached tokens?", strings.Join(names, ", "))); err != nil {
				return err
			}
		}
	}
	var errs []error
	for _, name := range names {
		s, err := a.settingsFor(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !s.Saved {
			fmt.Fprintf(a.Stderr, "No saved profile %s; cached tokens of that name, if any, were dropped.\n", name)
		}
		if l.DeleteSecret {
			if err := a.deleteKeyVaultSecret(s); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := a.logout(dir, name); err != nil {
			errs = append(errs, err)
			continue
		}
		if s.Saved {
			fmt.Fprintf(a.Stderr, "Forgot profile %s.\n", name)
		}
	}
	return errors.Join(errs...)
}

func (a *App) logout(dir profile.Dir, name string) error {
	s, err := a.settingsFor(name)
	if err != nil {
		return err
	}
	if s.Saved {
		st, _, err := a.secureStore(s)
		if err != nil {
			return err
		}
		if err := st.Remove(refreshKey(name)); err != nil {
			return configError("failed to remove the refresh token of %s: %w", name, err)
		}
		if err := st.Remove(secretKey(name)); err != nil {
			return configError("failed to remove the client secret of %s: %w", name, err)
		}
	}
	if c, err := a.openCache(); err == nil {
		if _, err := c.DeleteProfile(name); err != nil {
			return err
		}
	}
	return dir.Delete(name)
}

// confirm asks question on the terminal and fails unless the answer is yes. Where no
// person can answer (no terminal: a script, CI), it fails with the flag that confirms.
func (a *App) confirm(question string) error {
	if a.IsTerminal == nil || !a.IsTerminal() {
		return usageError("%s Confirm with --yes (there is no terminal to ask on)", question)
	}
	tty, err := a.TTY()
	if err != nil {
		return usageError("%s Confirm with --yes (the terminal cannot be opened: %w)", question, err)
	}
	defer tty.Close()
	fmt.Fprintf(tty, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(tty).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return usageError("not confirmed: nothing was forgotten")
	}
	return nil
}

// Package lab is `mailmon lab`, the world `go tool task run` starts: real
// servers on loopback that mailmon watches, and every worker watching them
// with deploy/config/mailmon.lab.yaml.
//
//   - our MTA, a private Postfix (services/peers): customers submit to it,
//     each customer's mail leaves from its pool (127.0.0.2 or 127.0.0.3,
//     smtp_bind_address per transport), probes come in on one listener per
//     probe source, the policy service is asked about every recipient, and
//     rerouted mail leaves through ndr from 127.0.0.4;
//   - the providers gmail.lab, yahoo.lab and outlook.lab: a receiving
//     Postfix delivering to Dovecot seed mailboxes, each provider judging
//     our IPs in its own way (greylisting, spam folder, Outlook's S3150
//     block reply);
//   - a lab DNS server (miekg/dns) for the lab domains and rbldnsd serving
//     a blocklist that lists 127.0.0.3;
//   - traffic: three customers, one a spammer, sending with signed tracking
//     headers, and a feedback-loop operator whose DKIM-signed reports make
//     the spammer's complaint rate cross the line.
//
// The config file is the one source of addresses: the lab starts its
// servers on the ports the workers are configured to use. Everything
// started is stopped by its own pid when the context ends; the state under
// data_dir (var/lab) stays, so the next run resumes. A server left running
// by a lab that was killed is stopped at the next start.
//
// Summary reads each signal back from ClickHouse, as `mailmon lab status`
// prints it; TestLab runs the lab with time compressed and waits for each.
package lab

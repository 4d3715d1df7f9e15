package interop

// A registry client that puts on the wire exactly what kratos v2's discovery
// registry (module github.com/go-kratos/kratos/contrib/registry/discovery/v2)
// sends. That module is not served by the Go module proxy this harness can
// reach, so this client stands in for it: the same HTTP library (resty v2),
// the same kratos v2 registry interfaces, and the same requests:
//
//   POST /discovery/register|renew|cancel with every parameter in the URL
//        query and an empty body (resty's SetQueryParamsFromValues + Post);
//   GET  /discovery/polls?env&hostname&appid...&latest_timestamp...
//
// Register sends region, zone, env, hostname, appid, repeated addrs, version,
// status=1 and metadata (JSON, with the instance ID under
// "kratos.v2.serviceinstance.id"). Only instances of the client's own zone are
// returned by GetService and Watcher.Next, as in kratos.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/go-kratos/kratos/v2/registry"
	"github.com/go-resty/resty/v2"
)

const kratosInstanceIDKey = "kratos.v2.serviceinstance.id"

type kratosClient struct {
	node                    string
	region, zone, env, host string
	http                    *resty.Client
}

var (
	_ registry.Registrar = (*kratosClient)(nil)
	_ registry.Discovery = (*kratosClient)(nil)
)

func newKratosClient(node, host string) *kratosClient {
	return &kratosClient{
		node: node, region: region, zone: zone, env: deployEnv, host: host,
		http: resty.New().SetTimeout(40 * time.Second),
	}
}

func (c *kratosClient) identity(appid string) url.Values {
	return url.Values{
		"region": {c.region}, "zone": {c.zone}, "env": {c.env},
		"hostname": {c.host}, "appid": {appid},
	}
}

// post sends a POST whose parameters are all in the query string.
func (c *kratosClient) post(ctx context.Context, path string, params url.Values) (int, error) {
	var res struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	resp, err := c.http.R().
		SetContext(ctx).
		SetQueryParamsFromValues(params).
		SetResult(&res).
		Post("http://" + c.node + "/discovery/" + path)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode() != 200 {
		return 0, fmt.Errorf("POST %s: HTTP %d: %s", path, resp.StatusCode(), resp.Body())
	}
	return res.Code, nil
}

// Register registers service once (the periodic renew is driven by the test).
func (c *kratosClient) Register(ctx context.Context, service *registry.ServiceInstance) error {
	md := map[string]string{}
	for k, v := range service.Metadata {
		md[k] = v
	}
	md[kratosInstanceIDKey] = service.ID
	mdJSON, err := json.Marshal(md)
	if err != nil {
		return err
	}
	p := c.identity(service.Name)
	for _, e := range service.Endpoints {
		p.Add("addrs", e)
	}
	p.Set("version", service.Version)
	p.Set("status", "1")
	p.Set("metadata", string(mdJSON))
	code, err := c.post(ctx, "register", p)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("register: code %d", code)
	}
	return nil
}

// renew is what the kratos registry sends every 30 s.
func (c *kratosClient) renew(ctx context.Context, appid string) (int, error) {
	return c.post(ctx, "renew", c.identity(appid))
}

func (c *kratosClient) Deregister(ctx context.Context, service *registry.ServiceInstance) error {
	code, err := c.post(ctx, "cancel", c.identity(service.Name))
	if err != nil {
		return err
	}
	if code != 0 && code != -404 { // kratos ignores -404 on cancel
		return fmt.Errorf("cancel: code %d", code)
	}
	return nil
}

type kratosInstance struct {
	Region   string            `json:"region"`
	Zone     string            `json:"zone"`
	Env      string            `json:"env"`
	AppID    string            `json:"appid"`
	Hostname string            `json:"hostname"`
	Addrs    []string          `json:"addrs"`
	Version  string            `json:"version"`
	LastTs   int64             `json:"latest_timestamp"`
	Metadata map[string]string `json:"metadata"`
	Status   int64             `json:"status"`
}

type kratosAppInfo struct {
	Instances map[string][]*kratosInstance `json:"instances"`
	LastTs    int64                        `json:"latest_timestamp"`
}

// polls is one long poll for appid: code 0 with the app, -304 after the hold, or an error.
func (c *kratosClient) polls(ctx context.Context, appid string, lastTs int64) (*kratosAppInfo, int, error) {
	var res struct {
		Code int                       `json:"code"`
		Data map[string]*kratosAppInfo `json:"data"`
	}
	p := url.Values{"env": {c.env}, "hostname": {c.host}, "appid": {appid}, "latest_timestamp": {strconv.FormatInt(lastTs, 10)}}
	if _, err := c.http.R().SetContext(ctx).SetQueryParamsFromValues(p).SetResult(&res).
		Get("http://" + c.node + "/discovery/polls"); err != nil {
		return nil, 0, err
	}
	if res.Code != 0 {
		return nil, res.Code, nil
	}
	app := res.Data[appid]
	if app == nil || app.LastTs == 0 { // kratos treats a zero timestamp as a server error
		return nil, res.Code, errors.New("polls answer without the app or with latest_timestamp 0")
	}
	return app, 0, nil
}

func (c *kratosClient) toServices(app *kratosAppInfo) []*registry.ServiceInstance {
	var out []*registry.ServiceInstance
	for _, in := range app.Instances[c.zone] {
		md := map[string]string{"region": in.Region, "zone": in.Zone, "env": in.Env, "hostname": in.Hostname}
		for k, v := range in.Metadata {
			md[k] = v
		}
		out = append(out, &registry.ServiceInstance{
			ID: in.Metadata[kratosInstanceIDKey], Name: in.AppID, Version: in.Version,
			Metadata: md, Endpoints: in.Addrs,
		})
	}
	return out
}

func (c *kratosClient) GetService(ctx context.Context, name string) ([]*registry.ServiceInstance, error) {
	app, code, err := c.polls(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("GetService(%s): code %d", name, code)
	}
	return c.toServices(app), nil
}

func (c *kratosClient) Watch(ctx context.Context, name string) (registry.Watcher, error) {
	return &kratosWatcher{c: c, ctx: ctx, name: name}, nil
}

type kratosWatcher struct {
	c      *kratosClient
	ctx    context.Context
	name   string
	lastTs int64
}

// Next blocks until the app exists and differs from what was last returned.
func (w *kratosWatcher) Next() ([]*registry.ServiceInstance, error) {
	for {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		app, code, err := w.c.polls(w.ctx, w.name, w.lastTs)
		switch {
		case err != nil:
			return nil, err
		case code == -304 || code == -404:
			// nothing new yet: like kratos, wait a second and poll again
			select {
			case <-w.ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		case code != 0:
			return nil, fmt.Errorf("polls: code %d", code)
		}
		w.lastTs = app.LastTs
		if out := w.c.toServices(app); len(out) > 0 {
			return out, nil
		}
	}
}

func (w *kratosWatcher) Stop() error { return nil }

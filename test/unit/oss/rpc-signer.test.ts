// Pins the RPC-style (signature version 1.0) signer to Alibaba Cloud's published example and to the
// encoding rules that differ from encodeURIComponent, so a regression cannot hide behind a stand-in that
// happens to share it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  rpcPercentEncode,
  rpcStringToSign,
  rpcSignature,
  signRpcParams,
  rpcTimestamp,
} from '../../../src/oss/index.ts';

// The example in Alibaba Cloud's "Signature mechanism" for RPC APIs (DescribeRegions, testid/testsecret).
const DOC_PARAMS = {
  TimeStamp: '2016-02-23T12:46:24Z',
  Format: 'XML',
  AccessKeyId: 'testid',
  Action: 'DescribeRegions',
  SignatureMethod: 'HMAC-SHA1',
  SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf',
  Version: '2014-05-26',
  SignatureVersion: '1.0',
};

test("the documented example: Alibaba's StringToSign and signature", () => {
  assert.equal(
    rpcStringToSign('GET', DOC_PARAMS),
    'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1' +
      '%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0' +
      '%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26',
  );
  assert.equal(rpcSignature('testsecret', 'GET', DOC_PARAMS), 'CT9X0VtwR86fNWSnsc6v8YGOjuE=');
});

test('percent-encoding is RFC 3986: space %20, * %2A, ~ kept, and UTF-8 bytes upper-case', () => {
  assert.equal(rpcPercentEncode("a b*c~d!'()"), 'a%20b%2Ac~d%21%27%28%29');
  assert.equal(rpcPercentEncode('+/=&\n'), '%2B%2F%3D%26%0A');
  assert.equal(rpcPercentEncode('é中'), '%C3%A9%E4%B8%AD');
  assert.equal(rpcPercentEncode('AZaz09-_.'), 'AZaz09-_.');
});

test('parameters sort by key in byte order, and a change in any value changes the signature', () => {
  const params = { b: '1', B: '2', a: 'x y', ObjectPath: 'https://e.com/a\nhttps://e.com/b' };
  assert.equal(
    rpcStringToSign('POST', params),
    `POST&%2F&${encodeURIComponent('B=2&ObjectPath=https%3A%2F%2Fe.com%2Fa%0Ahttps%3A%2F%2Fe.com%2Fb&a=x%20y&b=1')}`,
  );
  const base = rpcSignature('s', 'POST', params);
  assert.notEqual(rpcSignature('s', 'POST', { ...params, b: '2' }), base);
  assert.notEqual(rpcSignature('s', 'GET', params), base);
  assert.notEqual(rpcSignature('t', 'POST', params), base);
});

test('signRpcParams adds the common parameters, the token when there is one, and a signature over all', () => {
  const at = new Date('2024-05-06T07:08:09.123Z');
  const signed = signRpcParams({
    method: 'POST',
    action: 'RefreshObjectCaches',
    version: '2018-05-10',
    params: { ObjectPath: 'https://e.com/a', ObjectType: 'File' },
    credentials: { accessKeyId: 'STS.id', accessKeySecret: 'sk', securityToken: 'tok' },
    now: at,
    nonce: 'n-1',
  });
  const { Signature, ...rest } = signed;
  assert.deepEqual(rest, {
    Action: 'RefreshObjectCaches',
    Version: '2018-05-10',
    Format: 'JSON',
    AccessKeyId: 'STS.id',
    SignatureMethod: 'HMAC-SHA1',
    SignatureVersion: '1.0',
    SignatureNonce: 'n-1',
    Timestamp: '2024-05-06T07:08:09Z',
    SecurityToken: 'tok',
    ObjectPath: 'https://e.com/a',
    ObjectType: 'File',
  });
  assert.equal(Signature, rpcSignature('sk', 'POST', rest));
  assert.equal(rpcTimestamp(at), '2024-05-06T07:08:09Z');

  const plain = signRpcParams({
    method: 'POST',
    action: 'DescribeRefreshQuota',
    version: '2018-05-10',
    params: {},
    credentials: { accessKeyId: 'ak', accessKeySecret: 'sk' },
  });
  assert.equal('SecurityToken' in plain, false);
  assert.match(plain.SignatureNonce!, /^[0-9a-f-]{36}$/);
  assert.notEqual(
    plain.SignatureNonce,
    signRpcParams({
      method: 'POST',
      action: 'DescribeRefreshQuota',
      version: '2018-05-10',
      params: {},
      credentials: { accessKeyId: 'ak', accessKeySecret: 'sk' },
    }).SignatureNonce,
  );
});

test('a parameter that would override a common one is refused, naming it', () => {
  assert.throws(
    () =>
      signRpcParams({
        method: 'POST',
        action: 'A',
        version: 'v',
        params: { Signature: 'x' },
        credentials: { accessKeyId: 'ak', accessKeySecret: 'sk' },
      }),
    /Signature.*common parameter/,
  );
});

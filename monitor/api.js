// The admin API client: every call carries the bearer token.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function createApi(token, base = '') {
  async function call(method, path, body) {
    const response = await fetch(`${base}/admin/api/${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body ? { 'Content-Type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      cache: 'no-store',
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
    return data;
  }
  return {
    overview: () => call('GET', 'overview'),
    kick: (playerId, reason) => call('POST', `players/${playerId}/kick`, { reason }),
    closeLobby: (lobbyId, reason) => call('POST', `lobbies/${lobbyId}/close`, { reason }),
    drain: () => call('POST', 'drain'),
    notice: (text, lobbyId) => call('POST', 'notice', lobbyId ? { text, lobby_id: lobbyId } : { text }),
  };
}
